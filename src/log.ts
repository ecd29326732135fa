// Structured JSON logs, one line per event, always with the request id when there is one.
// Phone numbers and email addresses never reach a log line: every string field is redacted, so an
// error message that quotes a recipient (a provider's or a driver's) is safe to log.
import { tryGetContext } from "hono/context-storage";

export type LogLevel = "debug" | "info" | "warn" | "error";

const PHONE = /\+?\d[\d\s().-]{6,}\d/g;
const EMAIL = /[^\s@<>"'(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g;
/** Kept as they are: ids (what logs are searched by), timestamps and IPv4 addresses. */
const KEEP = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?|\b\d{1,3}(?:\.\d{1,3}){3}\b/gi;

export function redact(text: string): string {
  const ids: string[] = [];
  const masked = text.replace(KEEP, (id) => `\u0000${ids.push(id) - 1}\u0000`);
  return masked
    .replace(EMAIL, "[email]")
    .replace(PHONE, (match) => (match.replace(/\D/g, "").length >= 7 ? "[phone]" : match))
    .replace(/\u0000(\d+)\u0000/g, (_, i: string) => ids[Number(i)]!);
}

function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (depth > 5 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, depth + 1)]));
}

export function log(level: LogLevel, event: string, fields: Record<string, unknown> = {}) {
  // Inside a request, the name of the API key that made it (never the key): who did what.
  const apiKey = (tryGetContext()?.var as { apiKeyName?: string } | undefined)?.apiKeyName;
  const line = JSON.stringify({ level, event, time: new Date().toISOString(), ...(apiKey ? { api_key: apiKey } : {}), ...(redactValue(fields) as Record<string, unknown>) });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export function errorFields(error: unknown): Record<string, unknown> {
  if (error instanceof Error) return { error_name: error.name, error_message: error.message };
  return { error_message: String(error) };
}
