// The contract's fixtures (API-CONTRACT §10) and small helpers to send and read back.
import { call, jsonRequest, type Overrides } from "./http";

export const SMS = { from: "+15551234567", to: "+15559876543", type: "sms", body: "Test message" };
export const EMAIL = { from: "sender@example.com", to: "recipient@example.com", type: "email", body: "<p>Test email</p>", attachments: [] };

let counter = 0;
/** A fresh phone pair per call, so tests do not share conversations. */
export function freshPair(): { from: string; to: string } {
  counter += 1;
  const n = (Date.now() % 1_000_000) * 100 + (counter % 100);
  const tail = String(n).padStart(7, "0").slice(-7);
  return { from: `+1202${tail}`, to: `+1303${tail}` };
}

export async function send(body: unknown, headers: Record<string, string> = {}, overrides: Overrides = {}) {
  const res = await call("/api/v1/messages/send", jsonRequest("POST", body, headers), overrides);
  return { res, body: await res.json<any>() };
}

export async function getJson(path: string, overrides: Overrides = {}) {
  const res = await call(path, {}, overrides);
  return { res, body: await res.json<any>() };
}

/**
 * A message that stays `pending`: stored, but its enqueue fails (Redis unreachable for this one
 * request), so no worker picks it up while the test looks at it.
 */
export async function sendPending(body: unknown = SMS) {
  return send(body, {}, { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", REDIS_TIMEOUT_MS: "300", RATE_LIMIT_ENABLED: "false" });
}
