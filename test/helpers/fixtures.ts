// The contract's fixtures (docs/api.md) and small helpers to send and read back.
import { env } from "cloudflare:test";
import { loadConfig } from "../../src/config";
import { createDeps } from "../../src/deps";
import { acceptSend } from "../../src/services/send";
import { validateSend } from "../../src/validation/messages";
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
 * A message that stays `pending`: stored through the send service like any send, but never enqueued
 * (a failed XADD would now be handed to the shard, which writes the entry later), so no worker picks
 * it up while the test looks at it.
 */
export async function sendPending(body: Record<string, unknown> = SMS) {
  const config = loadConfig(env);
  const deps = createDeps(config);
  try {
    const input = validateSend(body, config.DEFAULT_PHONE_REGION);
    const accepted = await acceptSend(deps, config, input, { source: "api", enqueue: false, deadline: Date.now() + 30_000 });
    return { body: JSON.parse(JSON.stringify(accepted.message)) as any };
  } finally {
    await deps.close();
  }
}
