// Proves POST /api/v1/webhooks/sendgrid (§6.3, §9.5-9.8; cases 50-53): JSON test format, Event Webhook batches with per-element dedupe and forward-only moves, Inbound Parse multipart, ECDSA signatures over exact bytes, and nothing stored on 400/403.
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { getJson } from "../helpers/fixtures";
import {
  SG,
  eventsOf,
  inboundParse,
  messageOf,
  messagesWithProviderId,
  postJson,
  sendgridKeys,
  sentMessage,
  sha256Hex,
  signedHeaders,
  storedCounts,
  uniqueId,
} from "../helpers/webhooks";

const PATH = "/api/v1/webhooks/sendgrid";
const callbacks = (events: { type: string; data: Record<string, any> }[]) => events.filter((e) => e.type === "callback_received").map((e) => e.data);

async function expectOk(res: Response) {
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: "ok" });
}

/** The generic route answers the same processing with a summary, which makes counts visible. */
async function postEvents(events: unknown[], headers: Record<string, string> = {}, overrides = {}) {
  const res = await postJson("/api/v1/webhooks/generic/sendgrid", events, headers, overrides);
  expect(res.status).toBe(200);
  return (await res.json<any>()).result;
}

describe("SendGrid webhook", () => {
  it("stores the §9.7 test email once; a non-JSON body and {} are 400 and store nothing (case 50)", async () => {
    await expectOk(await postJson(PATH, SG));
    const [stored] = await messagesWithProviderId("email_123");
    expect(await messageOf(stored!.id)).toMatchObject({
      direction: "inbound",
      status: "delivered",
      type: "email",
      provider: "sendgrid",
      from: "sender@example.com",
      to: "recipient@example.com",
      body: "<p>Hello</p>",
      attachments: [],
      metadata: { timestamp: "2024-01-01T12:00:00Z" },
      segments: null,
    });
    await expectOk(await postJson(PATH, SG));
    expect(await messagesWithProviderId("email_123")).toHaveLength(1);

    const before = await storedCounts();
    const notJson = await postJson(PATH, "this is not json");
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: "bad_request", details: [{ path: "body" }] });
    const empty = await postJson(PATH, {});
    expect(empty.status).toBe(400);
    expect((await empty.json<any>()).details.map((d: any) => d.path)).toEqual(["body.from", "body.to"]);
    expect((await postJson(PATH, "42")).status).toBe(400);
    expect((await postJson(PATH, { ...SG, xillio_id: uniqueId("x"), from: undefined })).status).toBe(400);
    expect(await storedCounts()).toEqual(before);
  });

  it("applies delivered once, and a bounce makes another email undelivered (case 51)", async () => {
    const email = await sentMessage("email");
    const eventId = uniqueId("e1-");
    const batch = [{ event: "delivered", sg_event_id: eventId, sg_message_id: `${email.providerMessageId}.filter0`, message_id: email.id, timestamp: 1736937000 }];
    await expectOk(await postJson(PATH, batch));
    const delivered = await messageOf(email.id);
    expect(delivered.status).toBe("delivered");
    expect(delivered.delivered_at).toBe("2025-01-15T10:30:00.000Z");
    const events = await eventsOf(email.id);
    expect(callbacks(events)).toEqual([{ provider: "sendgrid", provider_status: "delivered", provider_event_id: eventId, applied: true, reason: null }]);

    await expectOk(await postJson(PATH, batch));
    expect(await eventsOf(email.id)).toHaveLength(events.length);

    const other = await sentMessage("email");
    await expectOk(
      await postJson(PATH, [{ event: "bounce", sg_event_id: uniqueId("b-"), sg_message_id: `${other.providerMessageId}.filter1`, message_id: other.id, status: "5.1.1", type: "bounce", reason: "550 5.1.1 Unknown user", timestamp: 1736937000 }]),
    );
    const bounced = await messageOf(other.id);
    expect(bounced.status).toBe("undelivered");
    expect(bounced.error).toEqual({ code: "5.1.1", message: "550 5.1.1 Unknown user" });
  });

  it("the contract's literal case 51 batch (sg_event_id e1) is applied once", async () => {
    const email = await sentMessage("email");
    const batch = [{ event: "delivered", sg_event_id: "e1", sg_message_id: `${email.providerMessageId}.filter0`, message_id: email.id, timestamp: 1736937000 }];
    await expectOk(await postJson(PATH, batch));
    await expectOk(await postJson(PATH, batch));
    expect((await messageOf(email.id)).status).toBe("delivered");
    expect(callbacks(await eventsOf(email.id))).toHaveLength(1);
  });

  it("matches on sg_message_id when no id of ours comes back, and summarises a mixed batch element by element", async () => {
    const email = await sentMessage("email");
    const processed = uniqueId("p-");
    const result = await postEvents([
      { event: "processed", sg_event_id: processed, sg_message_id: `${email.providerMessageId}.filterdrecv-1.2`, timestamp: 1736936990 },
      { event: "deferred", sg_event_id: uniqueId("d-"), sg_message_id: `${email.providerMessageId}.x`, response: "try later", timestamp: 1736936995 },
      { event: "open", sg_event_id: uniqueId("o-"), custom_args: { message_id: email.id }, timestamp: 1736937005 },
      { event: "dropped", sg_event_id: uniqueId("x-"), sg_message_id: email.providerMessageId, reason: "Bounced Address", timestamp: 1736937010 },
      { event: "delivered", sg_event_id: uniqueId("n-"), sg_message_id: "nobody.filter0", timestamp: 1736937000 },
      { event: "delivered", sg_event_id: uniqueId("n-"), message_id: crypto.randomUUID(), timestamp: 1736937000 },
      "not an object",
      { sg_event_id: uniqueId("s-"), sg_message_id: email.providerMessageId },
      { event: "delivered", sg_message_id: email.providerMessageId },
    ]);
    expect(result).toEqual({ status: "success", kind: "events", received: 9, applied: 1, duplicates: 0, unmatched: 2, skipped: 3 });
    const message = await messageOf(email.id);
    expect(message.status).toBe("failed");
    expect(message.error).toEqual({ code: "dropped", message: "Bounced Address" });
    expect(callbacks(await eventsOf(email.id)).map((d) => [d.provider_status, d.applied, d.reason])).toEqual([
      ["processed", false, "no_status_change"],
      ["deferred", false, "no_status_change"],
      ["open", false, "no_status_change"],
      ["dropped", true, null],
    ]);

    const again = await postEvents([{ event: "processed", sg_event_id: processed, sg_message_id: email.providerMessageId }]);
    expect(again).toMatchObject({ received: 1, applied: 0, duplicates: 1 });
    expect(await postEvents([])).toEqual({ status: "success", kind: "events", received: 0, applied: 0, duplicates: 0, unmatched: 0, skipped: 0 });
  });

  it("accepts a correctly signed array and refuses one flipped body byte or missing headers with nothing stored (case 52)", async () => {
    const keys = await sendgridKeys();
    const overrides = { SENDGRID_WEBHOOK_PUBLIC_KEY: keys.publicKey };
    const email = await sentMessage("email");
    const body = JSON.stringify([{ event: "delivered", sg_event_id: uniqueId("sig-"), sg_message_id: `${email.providerMessageId}.f`, message_id: email.id, timestamp: 1736937000 }]);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = await keys.sign(timestamp, body);

    const before = await storedCounts([email.id]);
    const flipped = body.replace('"delivered"', '"delivereD"');
    const bad = await postJson(PATH, flipped, signedHeaders(signature, timestamp), overrides);
    expect(bad.status).toBe(403);
    expect(await bad.json()).toEqual({ error: "forbidden", message: "Invalid webhook signature", details: null });
    expect((await postJson(PATH, body, {}, overrides)).status).toBe(403);
    expect((await postJson(PATH, body, { "x-twilio-email-event-webhook-signature": signature }, overrides)).status).toBe(403);
    const reserialised = JSON.stringify(JSON.parse(body), null, 2);
    expect((await postJson(PATH, reserialised, signedHeaders(signature, timestamp), overrides)).status).toBe(403);
    // the JSON test format needs the signature too
    expect((await postJson(PATH, { ...SG, xillio_id: uniqueId("u") }, {}, overrides)).status).toBe(403);
    expect(await storedCounts([email.id])).toEqual(before);

    await expectOk(await postJson(PATH, body, signedHeaders(signature, timestamp), overrides));
    expect((await messageOf(email.id)).status).toBe("delivered");
  });

  it("stores an Inbound Parse email with the address, subject and attachment count (case 53)", async () => {
    const messageId = `<${uniqueId("m")}@mail.example.com>`;
    const { contentType, bytes } = await inboundParse(
      {
        from: "Ann <Ann@Example.com>",
        to: '"Support, Team" <support@Example.org>, other@example.org',
        subject: "Question",
        text: "Hello from Ann",
        html: "<p>Hello from Ann</p>",
        attachments: "2",
        headers: `Received: by mx.example.com\r\nMessage-ID:\r\n ${messageId}\r\nSubject: Question\r\n`,
        envelope: '{"to":["support@example.org"],"from":"ann@example.com"}',
      },
      { name: "attachment1", content: "file body" },
    );
    const res = await call(PATH, { method: "POST", headers: { "content-type": contentType }, body: bytes });
    await expectOk(res);
    const [stored] = await messagesWithProviderId(messageId);
    const message = await messageOf(stored!.id);
    expect(message).toMatchObject({
      direction: "inbound",
      type: "email",
      provider: "sendgrid",
      from: "Ann@example.com",
      to: "support@example.org",
      body: "Hello from Ann",
      // The file part is kept in R2 (test/media.test.ts).
      attachments: [`http://service.test/api/v1/messages/${stored!.id}/attachments/0`],
      metadata: { attachment_count: 2, subject: "Question" },
    });
    // redelivered: still one
    await expectOk(await call(PATH, { method: "POST", headers: { "content-type": contentType }, body: bytes }));
    expect(await messagesWithProviderId(messageId)).toHaveLength(1);
  });

  it("uses html when text is empty, keys a parse without Message-ID on its content, and 400s without to", async () => {
    const fields = { from: "a@example.com", to: "b@example.com", subject: uniqueId("s"), text: "", html: "<b>hi</b>" };
    const first = await inboundParse(fields);
    await expectOk(await call(PATH, { method: "POST", headers: { "content-type": first.contentType }, body: first.bytes }));
    const key = `parse-${(await sha256Hex(new TextEncoder().encode(`a@example.com\nb@example.com\n${fields.subject}\n`))).slice(0, 32)}`;
    const [stored] = await messagesWithProviderId(key);
    expect(await messageOf(stored!.id)).toMatchObject({ body: "<b>hi</b>", metadata: { attachment_count: 0, subject: fields.subject } });

    const before = await storedCounts();
    const noTo = await inboundParse({ from: "a@example.com", text: "x" });
    const res = await call(PATH, { method: "POST", headers: { "content-type": noTo.contentType }, body: noTo.bytes });
    expect(res.status).toBe(400);
    expect((await res.json<any>()).details).toEqual([{ path: "body.to", message: "Field required" }]);
    const broken = await call(PATH, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=nope" }, body: "garbage" });
    expect(broken.status).toBe(400);
    expect(await storedCounts()).toEqual(before);
  });

  it("verifies Inbound Parse with SENDGRID_PARSE_PUBLIC_KEY only", async () => {
    const parseKeys = await sendgridKeys();
    const eventKeys = await sendgridKeys();
    const { contentType, bytes } = await inboundParse({ from: "a@example.com", to: "b@example.com", subject: uniqueId("signed"), text: "signed" });
    const timestamp = "1736937000";
    const post = (headers: Record<string, string>, overrides: Record<string, string>) =>
      call(PATH, { method: "POST", headers: { "content-type": contentType, ...headers }, body: bytes }, overrides);
    // only the event key set: multipart needs no signature
    const unsigned = await post({}, { SENDGRID_WEBHOOK_PUBLIC_KEY: eventKeys.publicKey });
    expect(unsigned.status).toBe(200);

    const { bytes: other, contentType: otherType } = await inboundParse({ from: "a@example.com", to: "b@example.com", subject: uniqueId("signed"), text: "signed" });
    const overrides = { SENDGRID_PARSE_PUBLIC_KEY: parseKeys.publicKey };
    const wrongKey = await call(PATH, { method: "POST", headers: { "content-type": otherType, ...signedHeaders(await eventKeys.sign(timestamp, other), timestamp) }, body: other }, overrides);
    expect(wrongKey.status).toBe(403);
    const good = await call(PATH, { method: "POST", headers: { "content-type": otherType, ...signedHeaders(await parseKeys.sign(timestamp, other), timestamp) }, body: other }, overrides);
    expect(good.status).toBe(200);
  });

  it("answers 415 for other types; takes SendGrid's sizes: JSON up to 5 MB, Inbound Parse up to 30 MB, 413 above", async () => {
    expect((await call(PATH, { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify(SG) })).status).toBe(415);
    expect((await call(PATH, { method: "POST", body: JSON.stringify(SG) })).status).toBe(415);
    expect((await postJson(PATH, JSON.stringify({ ...SG, xillio_id: uniqueId("large-"), body: "x".repeat(1_000_000) }))).status).toBe(200);
    expect((await postJson(PATH, JSON.stringify({ ...SG, body: "x".repeat(5 * 1024 * 1024) }))).status).toBe(413);
    const big = await inboundParse({ from: "a@example.com", to: "b@example.com", subject: uniqueId("big"), text: "big", attachments: "1" }, { name: "attachment1", content: "y".repeat(29 * 1024 * 1024) });
    expect((await call(PATH, { method: "POST", headers: { "content-type": big.contentType }, body: big.bytes })).status).toBe(200);
    const huge = await inboundParse({ from: "a@example.com", to: "b@example.com" }, { name: "attachment1", content: "z".repeat(30 * 1024 * 1024 + 1) });
    expect((await call(PATH, { method: "POST", headers: { "content-type": huge.contentType }, body: huge.bytes })).status).toBe(413);
  });

  it("stores a batch of 2,000 events (about 1 MB) in one delivery, applied in order", async () => {
    const emails = await Promise.all(Array.from({ length: 4 }, () => sentMessage("email")));
    const events = emails.flatMap((email) =>
      Array.from({ length: 500 }, (_, i) => ({
        event: i === 499 ? "delivered" : "open",
        sg_event_id: uniqueId("batch-"),
        custom_args: { message_id: email.id },
        timestamp: 1736937000 + i,
        useragent: "Mozilla/5.0 ".repeat(30),
      })),
    );
    expect(JSON.stringify(events).length).toBeGreaterThan(1_000_000);
    const result = await postEvents(events);
    expect(result).toMatchObject({ received: 2000, applied: 4, duplicates: 0, unmatched: 0, skipped: 0 });
    for (const email of emails) expect((await messageOf(email.id)).status).toBe("delivered");
  });

  it("creates one email from concurrent duplicate deliveries", async () => {
    const payload = { ...SG, xillio_id: uniqueId("conc-") };
    const responses = await Promise.all(Array.from({ length: 6 }, () => postJson(PATH, payload)));
    for (const res of responses) expect(res.status).toBe(200);
    const stored = await messagesWithProviderId(payload.xillio_id);
    expect(stored).toHaveLength(1);
    const conversation = (await getJson(`/api/v1/conversations/${(await messageOf(stored[0]!.id)).conversation_id}`)).body;
    expect(conversation.unread_count).toBeGreaterThanOrEqual(1);
  });
});
