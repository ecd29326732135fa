// Webhook test helpers: provider-shaped requests (signed like Twilio and SendGrid sign them),
// outbound messages already in `sent` without the worker, and direct reads of the record.
import { env } from "cloudflare:test";
import type { SQL } from "drizzle-orm";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../src/config";
import { createDeps } from "../../src/deps";
import { acceptSend } from "../../src/services/send";
import { bytesToBase64, sha256Hex, twilioSignature, twilioSignatureString } from "../../src/webhooks/signatures";
import { call, type Overrides } from "./http";
import { freshPair, getJson } from "./fixtures";

/** docs/api.md examples. */
export const TW = {
  messaging_provider_id: "test_123",
  from: "+15551234567",
  to: "+15559876543",
  type: "sms",
  body: "Hello",
  attachments: null,
  timestamp: "2024-01-01T12:00:00Z",
};
export const SG = {
  xillio_id: "email_123",
  from: "sender@example.com",
  to: "recipient@example.com",
  body: "<p>Hello</p>",
  attachments: [],
  timestamp: "2024-01-01T12:00:00Z",
};

export const TWILIO_SETTINGS = { TWILIO_AUTH_TOKEN: "test-auth-token", PUBLIC_BASE_URL: "https://msg.example.com" };
export const FORM = "application/x-www-form-urlencoded";

export const uniqueId = (prefix: string) => `${prefix}${crypto.randomUUID().replace(/-/g, "")}`;

/** Rows straight from Postgres, through the app's own client. */
export async function query<T = Record<string, unknown>>(statement: SQL): Promise<T[]> {
  const deps = createDeps(loadConfig(env));
  try {
    return await deps.db().run<T>(statement);
  } finally {
    await deps.close();
  }
}

export async function messagesWithProviderId(providerMessageId: string) {
  return query<{ id: string; direction: string; status: string }>(
    sql`select id, direction, status from messages where provider_message_id = ${providerMessageId}`,
  );
}

export async function countRows(table: "messages" | "message_events" | "processed_webhook_events" | "opt_outs" | "conversations"): Promise<number> {
  const [row] = await query<{ n: number }>(sql`select count(*)::int as n from ${sql.identifier(table)}`);
  return Number(row!.n);
}

/**
 * Every table a webhook may write, counted: equal before and after means nothing was stored. Events
 * are counted for the messages named only: earlier tests' background work (a due retry, an inbound
 * media fetch) adds events to their own messages meanwhile, and a new message shows in `messages`.
 */
export async function storedCounts(messageIds: string[] = []) {
  const tables = ["messages", "processed_webhook_events", "opt_outs", "conversations"] as const;
  const counts: Record<string, number> = Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await countRows(t)] as const)));
  const [events] = await query<{ n: number }>(sql`select count(*)::int as n from message_events where message_id = any(${`{${messageIds.join(",")}}`}::uuid[])`);
  counts.message_events_of_named = Number(events!.n);
  return counts;
}

/**
 * An outbound message in `sent` with a provider id, stored through the send service but never
 * enqueued, so that no worker touches it while a test posts callbacks.
 */
export async function sentMessage(
  type: "sms" | "email",
  providerMessageId = type === "email" ? uniqueId("sg").slice(0, 22) : uniqueId("SM").slice(0, 34),
  /** the same pair for an identical twin (same text too) */
  samePair?: { from: string; to: string },
) {
  const deps = createDeps(loadConfig(env));
  try {
    const pair = samePair ?? (type === "email" ? { from: "sender@example.com", to: `${uniqueId("r")}@example.com` } : freshPair());
    const accepted = await acceptSend(
      deps,
      loadConfig(env),
      { type, ...pair, body: "Test message", attachments: [], metadata: {}, parentId: null, conversationType: "direct" },
      { source: "api", enqueue: false, deadline: Date.now() + 30_000 },
    );
    const message = accepted.message;
    await deps.db().run(sql`update messages set status = 'sent', sent_at = now(), attempts = 1, provider_message_id = ${providerMessageId} where id = ${message.id}`);
    return { id: message.id, providerMessageId, conversationId: message.conversation_id, ...pair };
  } finally {
    await deps.close();
  }
}

export async function messageOf(id: string) {
  return (await getJson(`/api/v1/messages/${id}`)).body;
}

export async function eventsOf(id: string): Promise<{ type: string; data: Record<string, any> }[]> {
  return (await getJson(`/api/v1/messages/${id}/events?limit=500`)).body.events;
}

// --- Twilio

export function twilioForm(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

/** The X-Twilio-Signature Twilio would send for this URL and form body (or JSON: URL alone). */
export async function signTwilio(url: string, formBody = "", token = TWILIO_SETTINGS.TWILIO_AUTH_TOKEN): Promise<string> {
  return twilioSignature(token, twilioSignatureString(url, [...new URLSearchParams(formBody)]));
}

export async function postTwilio(path: string, body: string, init: { contentType?: string; signature?: string; headers?: Record<string, string> } = {}, overrides: Overrides = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.contentType !== undefined) headers["content-type"] = init.contentType;
  if (init.signature !== undefined) headers["x-twilio-signature"] = init.signature;
  return call(path, { method: "POST", headers, body }, overrides);
}

export const postTwilioForm = (path: string, fields: Record<string, string>, overrides: Overrides = {}) =>
  postTwilio(path, twilioForm(fields), { contentType: FORM }, overrides);

export const postJson = (path: string, body: unknown, headers: Record<string, string> = {}, overrides: Overrides = {}) =>
  call(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) }, overrides);

/** A status callback as Twilio posts it to our StatusCallback URL. */
export function statusCallback(message: { id: string; providerMessageId: string }, status: string, extra: Record<string, string> = {}) {
  return postTwilioForm(`/api/v1/webhooks/twilio?message_id=${message.id}`, {
    MessageSid: message.providerMessageId,
    MessageStatus: status,
    AccountSid: "AC00000000000000000000000000000000",
    ...extra,
  });
}

export { sha256Hex };

// --- SendGrid

export interface SendgridKeys {
  publicKey: string;
  sign(timestamp: string, body: Uint8Array | string): Promise<string>;
}

/** A fresh P-256 pair: the public key as SPKI base64 (as configured), signatures as raw r ‖ s base64. */
export async function sendgridKeys(): Promise<SendgridKeys> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  return {
    publicKey: bytesToBase64(spki),
    async sign(timestamp, body) {
      const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
      const stamp = new TextEncoder().encode(timestamp);
      const payload = new Uint8Array(stamp.length + bytes.length);
      payload.set(stamp);
      payload.set(bytes, stamp.length);
      const signature = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, payload));
      return bytesToBase64(signature);
    },
  };
}

/** r ‖ s → DER SEQUENCE{INTEGER r, INTEGER s}, as SendGrid actually sends it. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    let value = bytes.subarray(start);
    if (value[0]! & 0x80) value = Uint8Array.of(0, ...value);
    return Uint8Array.of(0x02, value.length, ...value);
  };
  const r = integer(raw.subarray(0, 32));
  const s = integer(raw.subarray(32));
  return Uint8Array.of(0x30, r.length + s.length, ...r, ...s);
}

export function signedHeaders(signature: string, timestamp: string): Record<string, string> {
  return { "x-twilio-email-event-webhook-signature": signature, "x-twilio-email-event-webhook-timestamp": timestamp };
}

/** A multipart Inbound Parse body with exact bytes (so that a signature over them holds). */
export async function inboundParse(fields: Record<string, string>, file?: { name: string; content: string }) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (file) form.append(file.name, new Blob([file.content], { type: "text/plain" }), `${file.name}.txt`);
  const request = new Request("http://form.invalid/", { method: "POST", body: form });
  return { contentType: request.headers.get("content-type")!, bytes: new Uint8Array(await request.arrayBuffer()) };
}
