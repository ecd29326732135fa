// Proves POST /api/v1/webhooks/twilio for inbound messages (§6.2, §9.1, §9.3, §9.4; cases 3, 41, 46-48): TwiML reply, dedupe (also under concurrency), signatures on form and JSON, media, 400/403/413/415 storing nothing, STOP/START opt-out.
import { describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { loadConfig } from "../../src/config";
import { createDeps } from "../../src/deps";
import { env } from "cloudflare:test";
import { call } from "../helpers/http";
import { freshPair, getJson } from "../helpers/fixtures";
import { sandboxFile } from "../helpers/sandbox";
import { waitFor } from "../helpers/worker";
import {
  FORM,
  TW,
  TWILIO_SETTINGS,
  eventsOf,
  messageOf,
  messagesWithProviderId,
  postJson,
  postTwilio,
  postTwilioForm,
  query,
  sha256Hex,
  signTwilio,
  storedCounts,
  twilioForm,
  uniqueId,
} from "../helpers/webhooks";

const PATH = "/api/v1/webhooks/twilio";
const VECTOR_BODY =
  "MessageSid=SM00000000000000000000000000000001&From=%2B15559876543&To=%2B15551234567&Body=Hello+there&NumMedia=0";

function inboundForm(extra: Record<string, string> = {}) {
  const pair = freshPair();
  return { MessageSid: uniqueId("SM"), From: pair.from, To: pair.to, Body: "Hi there", NumMedia: "0", AccountSid: "AC1", SmsStatus: "received", ...extra };
}

async function expectTwiml(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/xml");
  expect(await res.text()).toBe("<Response></Response>");
}

async function optedOut(from: string, to: string) {
  const deps = createDeps(loadConfig(env));
  try {
    const rows = await deps.db().run<{ opted_out: boolean }>(
      sql`select exists (select 1 from opt_outs where sender = ${from} and recipient = ${to}) as opted_out`,
    );
    return rows[0]?.opted_out === true;
  } finally {
    await deps.close();
  }
}

describe("Twilio inbound webhook", () => {
  it("stores the §9.3 test message once and answers TwiML every time (case 46)", async () => {
    await expectTwiml(await postJson(PATH, TW));
    const [stored] = await messagesWithProviderId("test_123");
    expect(stored).toBeDefined();
    const message = await messageOf(stored!.id);
    expect(message).toMatchObject({
      direction: "inbound",
      status: "delivered",
      type: "sms",
      provider: "twilio",
      provider_message_id: "test_123",
      from: "+15551234567",
      to: "+15559876543",
      body: "Hello",
      attachments: [],
      metadata: { timestamp: "2024-01-01T12:00:00Z" },
      segments: 1,
      error: null,
    });
    expect(message.delivered_at).toMatch(/Z$/);
    const events = await eventsOf(stored!.id);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ["created", { source: "webhook" }],
      ["received", { provider: "twilio", provider_message_id: "test_123" }],
    ]);

    await expectTwiml(await postJson(PATH, TW));
    expect(await messagesWithProviderId("test_123")).toHaveLength(1);
    expect(await eventsOf(stored!.id)).toHaveLength(2);
  });

  it("files inbound messages into the pair's direct conversation and counts them unread until read (case 41)", async () => {
    const pair = freshPair();
    const sent = await postJson("/api/v1/messages/send", { type: "sms", from: pair.to, to: pair.from, body: "outbound first" });
    const outbound = await sent.json<any>();
    await call(`/api/v1/conversations/${outbound.conversation_id}`, { method: "DELETE" });

    const form = { MessageSid: uniqueId("SM"), From: pair.from, To: pair.to, Body: "reply" };
    await expectTwiml(await postTwilioForm(PATH, form));
    const [stored] = await messagesWithProviderId(form.MessageSid);
    const message = await messageOf(stored!.id);
    expect(message.conversation_id).toBe(outbound.conversation_id);
    const conversation = (await getJson(`/api/v1/conversations/${outbound.conversation_id}`)).body;
    expect(conversation).toMatchObject({ type: "direct", status: "active", message_count: 2, unread_count: 1 });
    const read = await call(`/api/v1/conversations/${outbound.conversation_id}/read`, { method: "POST" });
    expect((await read.json<any>()).unread_count).toBe(0);

    // an inbound message never joins a thread, even when the pair has one
    await postJson("/api/v1/messages/send", { type: "sms", from: pair.to, to: pair.from, body: "thread", conversation_type: "thread" });
    const second = { ...form, MessageSid: uniqueId("SM") };
    await expectTwiml(await postTwilioForm(PATH, second));
    const [again] = await messagesWithProviderId(second.MessageSid);
    expect((await messageOf(again!.id)).conversation_id).toBe(outbound.conversation_id);
  });

  it("accepts the §9.4 signed form and refuses a wrong or missing signature without storing anything (case 47)", async () => {
    const before = await storedCounts();
    const wrong = await postTwilio(PATH, VECTOR_BODY, { contentType: FORM, signature: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }, TWILIO_SETTINGS);
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ error: "forbidden", message: "Invalid webhook signature", details: null });
    const missing = await postTwilio(PATH, VECTOR_BODY, { contentType: FORM }, TWILIO_SETTINGS);
    expect(missing.status).toBe(403);
    const otherToken = await postTwilio(PATH, VECTOR_BODY, { contentType: FORM, signature: "a6rFsHSOVPAZ0AkYXfU51vl0psU=" }, { ...TWILIO_SETTINGS, TWILIO_AUTH_TOKEN: "other" });
    expect(otherToken.status).toBe(403);
    expect(await storedCounts()).toEqual(before);

    await expectTwiml(await postTwilio(PATH, VECTOR_BODY, { contentType: FORM, signature: "a6rFsHSOVPAZ0AkYXfU51vl0psU=" }, TWILIO_SETTINGS));
    const [stored] = await messagesWithProviderId("SM00000000000000000000000000000001");
    expect(await messageOf(stored!.id)).toMatchObject({ from: "+15559876543", to: "+15551234567", body: "Hello there", type: "sms" });
  });

  it("signs the query as received: a signed ?message_id passes, the same request re-encoded fails", async () => {
    const form = twilioForm(inboundForm());
    const path = `${PATH}?note=a%2Fb`;
    const signature = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}${path}`, form);
    await expectTwiml(await postTwilio(path, form, { contentType: FORM, signature }, TWILIO_SETTINGS));
    const reencoded = await postTwilio(`${PATH}?note=a/b`, form, { contentType: FORM, signature }, TWILIO_SETTINGS);
    expect(reencoded.status).toBe(403);
  });

  it("verifies the JSON test format through bodySHA256 (§9.4 step 3)", async () => {
    const body = JSON.stringify({ ...TW, messaging_provider_id: uniqueId("json_") });
    const path = `${PATH}?bodySHA256=${await sha256Hex(new TextEncoder().encode(body))}`;
    const signature = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}${path}`);
    await expectTwiml(await postTwilio(path, body, { contentType: "application/json", signature }, TWILIO_SETTINGS));
    // the same signature without the digest in the query, or over another body: refused
    expect((await postTwilio(PATH, body, { contentType: "application/json", signature }, TWILIO_SETTINGS)).status).toBe(403);
    const other = body.replace("Hello", "Hellp");
    expect((await postTwilio(path, other, { contentType: "application/json", signature }, TWILIO_SETTINGS)).status).toBe(403);
  });

  it("stores an mms with its media from a signed form; 400 without From; 415 for text/plain (case 48)", async () => {
    const fields = inboundForm({ NumMedia: "1", MediaUrl0: sandboxFile("m.jpg", { type: "image/jpeg" }), MediaContentType0: "image/jpeg" });
    const form = twilioForm(fields);
    const signature = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}${PATH}`, form);
    await expectTwiml(await postTwilio(PATH, form, { contentType: FORM, signature }, TWILIO_SETTINGS));
    const [stored] = await messagesWithProviderId(fields.MessageSid);
    const message = await messageOf(stored!.id);
    // The media is copied into R2 (test/media.test.ts): attachments name the service's own URL for it.
    expect(message).toMatchObject({ type: "mms", attachments: [`https://msg.example.com/api/v1/messages/${stored!.id}/attachments/0`], segments: null, metadata: { media_content_types: ["image/jpeg"] } });
    // Its copy settles before the counts below are taken.
    await waitFor(() => eventsOf(stored!.id), (events) => events.some((e) => e.type === "media_fetch"));

    const before = await storedCounts();
    const { From: _omit, ...withoutFrom } = inboundForm();
    const noFrom = await postTwilioForm(PATH, withoutFrom);
    expect(noFrom.status).toBe(400);
    expect(await noFrom.json()).toEqual({ error: "bad_request", message: "Field required", details: [{ path: "body.From", message: "Field required" }] });
    const text = await postTwilio(PATH, twilioForm(inboundForm()), { contentType: "text/plain" });
    expect(text.status).toBe(415);
    expect((await text.json<any>()).error).toBe("unsupported_media_type");
    expect((await postTwilio(PATH, twilioForm(inboundForm()))).status).toBe(415);
    expect(await storedCounts()).toEqual(before);
  });

  it("answers 400 for each malformed body and stores nothing", async () => {
    const before = await storedCounts();
    const cases: [string, string, string][] = [
      [FORM, twilioForm(inboundForm({ NumMedia: "two" })), "body.NumMedia"],
      [FORM, twilioForm(inboundForm({ NumMedia: "-1" })), "body.NumMedia"],
      [FORM, twilioForm({ MessageStatus: "delivered" }), "body.MessageSid"],
      ["application/json", "{not json", "body"],
      ["application/json", "[1,2]", "body"],
      ["application/json", JSON.stringify({ ...TW, type: "email" }), "body.type"],
      ["application/json", JSON.stringify({ ...TW, attachments: [1] }), "body.attachments"],
      ["application/json", JSON.stringify({ ...TW, attachments: "x" }), "body.attachments"],
      ["application/json", JSON.stringify({ ...TW, from: undefined }), "body.from"],
      ["application/json", JSON.stringify({ ...TW, to: "" }), "body.to"],
    ];
    for (const [contentType, body, path] of cases) {
      const res = await postTwilio(PATH, body, { contentType });
      expect(res.status, body).toBe(400);
      const envelope = await res.json<any>();
      expect(envelope.error).toBe("bad_request");
      expect(envelope.details[0].path, body).toBe(path);
    }
    expect(await storedCounts()).toEqual(before);
  });

  it("answers 413 for a body over 256 KB before anything else", async () => {
    const res = await postTwilio(PATH, "Body=" + "x".repeat(262_145), { contentType: FORM }, TWILIO_SETTINGS);
    expect(res.status).toBe(413);
  });

  it("needs no bearer key, even with API_KEYS set (case 3)", async () => {
    const conversations = await call("/api/conversations", {}, { API_KEYS: "k1" });
    expect(conversations.status).toBe(401);
    const res = await postJson(PATH, { ...TW, messaging_provider_id: uniqueId("k_") }, {}, { API_KEYS: "k1" });
    await expectTwiml(res);
    expect(res.headers.get("x-ratelimit-limit")).toBeNull();
  });

  it("answers with or without a trailing slash", async () => {
    await expectTwiml(await postJson(`${PATH}/`, { ...TW, messaging_provider_id: uniqueId("slash_") }));
  });

  it("creates one message from concurrent duplicate deliveries, and every delivery gets TwiML", async () => {
    const fields = inboundForm();
    const responses = await Promise.all(Array.from({ length: 6 }, () => postTwilioForm(PATH, fields)));
    for (const res of responses) await expectTwiml(res);
    const stored = await messagesWithProviderId(fields.MessageSid);
    expect(stored).toHaveLength(1);
    expect(await eventsOf(stored[0]!.id)).toHaveLength(2);
    const [conversation] = await query<{ message_count: number; unread_count: number }>(
      sql`select c.message_count, c.unread_count from conversations c join messages m on m.conversation_id = c.id where m.id = ${stored[0]!.id}`,
    );
    expect(conversation).toEqual({ message_count: 1, unread_count: 1 });
  });

  it("derives the id of a JSON message without one from the body, so its redelivery is a duplicate", async () => {
    const body = JSON.stringify({ ...TW, messaging_provider_id: undefined, body: uniqueId("no id ") });
    await expectTwiml(await postJson(PATH, body));
    await expectTwiml(await postJson(PATH, body));
    const id = `json-${(await sha256Hex(new TextEncoder().encode(body))).slice(0, 32)}`;
    const stored = await messagesWithProviderId(id);
    expect(stored).toHaveLength(1);
    expect((await messageOf(stored[0]!.id)).type).toBe("sms");
  });

  it("keeps short codes and sender ids as given (trimmed) and infers mms from attachments", async () => {
    const id = uniqueId("sc_");
    await expectTwiml(await postJson(PATH, { messaging_provider_id: id, from: " 12345 ", to: "+15559876543", body: "code", attachments: ["https://example.com/a.png"] }));
    const [stored] = await messagesWithProviderId(id);
    expect(await messageOf(stored!.id)).toMatchObject({ from: "12345", to: "+15559876543", type: "mms" });
  });

  it("records an opt-out for STOP and lifts it with START, for that pair only", async () => {
    const pair = freshPair();
    const stop = { MessageSid: uniqueId("SM"), From: pair.from, To: pair.to, Body: " stop " };
    await expectTwiml(await postTwilioForm(PATH, stop));
    expect(await optedOut(pair.to, pair.from)).toBe(true);
    expect(await optedOut(pair.from, pair.to)).toBe(false);
    expect(await optedOut("+15550000000", pair.from)).toBe(false);
    const [row] = await query<{ keyword: string }>(sql`select keyword from opt_outs where sender = ${pair.to} and recipient = ${pair.from}`);
    expect(row!.keyword).toBe("STOP");

    // a redelivered STOP after START must not opt out again
    await expectTwiml(await postTwilioForm(PATH, { ...stop, MessageSid: uniqueId("SM"), Body: "Start" }));
    expect(await optedOut(pair.to, pair.from)).toBe(false);
    await expectTwiml(await postTwilioForm(PATH, stop));
    expect(await optedOut(pair.to, pair.from)).toBe(false);

    await expectTwiml(await postTwilioForm(PATH, { ...stop, MessageSid: uniqueId("SM"), Body: "UNSUBSCRIBE." }));
    expect(await optedOut(pair.to, pair.from)).toBe(true);
    // a sentence that merely contains the word is not a keyword
    await expectTwiml(await postTwilioForm(PATH, { ...stop, MessageSid: uniqueId("SM"), Body: "please start again" }));
    expect(await optedOut(pair.to, pair.from)).toBe(true);
  });
});
