// The HTTP edge shared by the live provider clients: one deadline per call (docs/architecture.md invariant
// 10), network failures turned into typed ProviderErrors, and Retry-After parsing.
import { ProviderError } from "./types";

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * fetch with a deadline covering the whole exchange, the response body included: a provider that
 * accepts the request and then stalls is as ambiguous as one that never answers.
 */
export async function callProvider(url: string, init: RequestInit, timeoutMs: number): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, headers: res.headers, text: await res.text() };
  } catch (error) {
    throw networkError(error, timeoutMs);
  }
}

/**
 * Classifies a failed fetch. A timeout may come after the provider accepted the request, so it is
 * ambiguous. workerd reports a refused connection and a connection reset after the request was
 * sent with the same error ("Network connection lost.", seen in this runtime; the cause appears
 * only in the runtime's own log), so that one is ambiguous too: treating a reset as a plain
 * transient error could send the message twice, while treating a refused connection as
 * ambiguous only costs a reconcile lookup before the next attempt. Anything else (a malformed
 * URL, a refused outbound address) fails before any byte leaves, so it is a plain transient error.
 */
export function networkError(error: unknown, timeoutMs: number): ProviderError {
  if (error instanceof ProviderError) return error;
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "TimeoutError" || name === "AbortError") {
    return new ProviderError("timeout", "timeout", `Provider did not answer within ${timeoutMs} ms`, { ambiguous: true });
  }
  if (/network connection lost|connection reset|socket hang up|ECONNRESET|other side closed/i.test(message)) {
    return new ProviderError("timeout", "connection_lost", `Connection lost before the provider answered (${message})`, { ambiguous: true });
  }
  return new ProviderError("transient", "network_error", message);
}

/**
 * Seconds to wait from `Retry-After` (seconds or an HTTP date) or, as SendGrid sends it,
 * `X-RateLimit-Reset` (a unix timestamp). Undefined when neither is usable.
 */
export function retryAfterSeconds(headers: Headers, nowMs = Date.now()): number | undefined {
  const retryAfter = headers.get("retry-after")?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - nowMs) / 1000));
  }
  const reset = headers.get("x-ratelimit-reset")?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(1, Number(reset) - Math.floor(nowMs / 1000));
  return undefined;
}

/** base64 of UTF-8 bytes (btoa alone throws on anything outside Latin-1). */
export function base64(input: string | Uint8Array): string {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
