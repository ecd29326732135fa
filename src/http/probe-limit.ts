// Probes are public, so a flood of them must not become a flood of database checks: readiness is
// cached per isolate (src/services/health.ts), and each client address gets at most PROBE_LIMIT
// probes per PROBE_WINDOW_MS per isolate, counted in memory (no Redis command to count them).
import { AppError } from "../errors";
import type { AppContext } from "./context";

const PROBE_LIMIT = 30;
const PROBE_WINDOW_MS = 10_000;
/** Entries kept at most; the oldest windows are forgotten first. */
const MAX_CLIENTS = 10_000;

const windows = new Map<string, { start: number; count: number }>();

export function limitProbe(c: AppContext): void {
  const ip = c.req.header("cf-connecting-ip") ?? "unknown";
  const now = Date.now();
  let entry = windows.get(ip);
  if (!entry || now - entry.start >= PROBE_WINDOW_MS) {
    windows.delete(ip);
    if (windows.size >= MAX_CLIENTS) windows.delete(windows.keys().next().value!);
    entry = { start: now, count: 0 };
    windows.set(ip, entry);
  }
  entry.count++;
  if (entry.count > PROBE_LIMIT) {
    const retryAfter = Math.max(1, Math.ceil((entry.start + PROBE_WINDOW_MS - now) / 1000));
    throw new AppError(429, "rate_limited", "Too many probes from this address. Please try again later.", null, { "Retry-After": String(retryAfter) });
  }
}
