// Proves the message routes against the contract (§3, §10 cases 7-25) with real Postgres and Redis.
import { env } from "cloudflare:test";
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { EMAIL, freshPair, getJson, send, sendPending, SMS } from "./helpers/fixtures";
import { sql } from "./helpers/db";

const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN });

async function expect422(body: unknown, path: string, message?: string) {
  const { res, body: answer } = await send(body);
  expect(res.status, JSON.stringify(answer)).toBe(422);
  expect(answer.error).toBe("validation_error");
  const entry = answer.details.find((d: any) => d.path === path);
  expect(entry, JSON.stringify(answer.details)).toBeDefined();
  if (message) expect(entry.message).toBe(message);
  return answer;
}

describe("POST /api/v1/messages/send", () => {
  it("stores an SMS as pending and answers 201 with the full message", async () => {
    const { res, body } = await send(SMS);
    expect(res.status).toBe(201);
    expect(body).toMatchObject({
      status: "pending",
      direction: "outbound",
      type: "sms",
      provider: "twilio",
      attempts: 0,
      error: null,
      segments: 1,
      from: SMS.from,
      to: SMS.to,
      body: SMS.body,
      attachments: [],
      metadata: {},
      parent_id: null,
      provider_message_id: null,
      sent_at: null,
      delivered_at: null,
    });
    expect(body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it("puts a stream entry whose data carries the message id on message_queue:sms", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    const entries = (await redis.xrevrange("message_queue:sms", "+", "-", 50)) as Record<string, Record<string, unknown>>;
    const found = Object.values(entries)
      .map((fields) => fields.data as any)
      .find((d) => d.message_id === body.id);
    expect(found).toMatchObject({ message_id: body.id, retry_count: 0 });
    expect(typeof found.scheduled_at).toBe("string");
  });

  it("records created then enqueued in the timeline", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    const { body: timeline } = await getJson(`/api/v1/messages/${body.id}/events`);
    expect(timeline.events.map((e: any) => e.type).slice(0, 2)).toEqual(["created", "enqueued"]);
    expect(timeline.events[0].data).toEqual({ source: "api" });
    expect(timeline.events[1].data).toEqual({ queue: "sms", reason: "initial" });
  });

  it("normalises phone numbers and groups their conversations (case 9)", async () => {
    const a = await send({ ...SMS, to: "(555) 987-6543" });
    expect(a.body.to).toBe("+15559876543");
    const b = await send({ ...SMS, to: "15559876543" });
    expect(b.body.conversation_id).toBe(a.body.conversation_id);
  });

  it("accepts an MMS with an empty body and attachments (case 10)", async () => {
    const { res, body } = await send({ type: "mms", from: "+15551234567", to: "+15559876543", body: "", attachments: ["https://example.com/a.jpg"] });
    expect(res.status).toBe(201);
    expect(body.segments).toBeNull();
    expect(body.attachments).toEqual(["https://example.com/a.jpg"]);
    await expect422({ type: "mms", from: SMS.from, to: SMS.to, body: "hi" }, "body.attachments", "MMS requires at least one attachment");
  });

  it("lower-cases only the email domain and picks sendgrid (case 11)", async () => {
    const { res, body } = await send({ ...EMAIL, to: "Recipient@Example.COM" });
    expect(res.status).toBe(201);
    expect(body.to).toBe("Recipient@example.com");
    expect(body.provider).toBe("sendgrid");
    expect(body.segments).toBeNull();
  });

  it("rejects missing or invalid types (case 12)", async () => {
    const empty = await expect422({}, "body.type", "Field required");
    expect(empty.message).toBe("Field required");
    await expect422({ invalid: "data" }, "body.type");
    const { type: _t, ...noType } = SMS;
    await expect422(noType, "body.type");
    await expect422({ ...SMS, type: "voice" }, "body.type", "type must be one of: sms, mms, email");
  });

  it("gives the exact address messages (cases 13, 14)", async () => {
    const bad = await expect422({ ...SMS, to: "not-a-number" }, "body.to", "Recipient must be a valid phone number for SMS/MMS");
    expect(bad.message).toBe("Recipient must be a valid phone number for SMS/MMS");
    await expect422({ ...SMS, from: "invalid" }, "body.from", "Sender must be a valid phone number for SMS/MMS");
    await expect422({ ...SMS, to: 15559876543 }, "body.to", "Recipient must be a valid phone number for SMS/MMS");
    for (const number of ["12", "+0123"]) await expect422({ ...SMS, to: number }, "body.to");
    await expect422({ ...EMAIL, to: crypto.randomUUID() }, "body.to", "Recipient must be a valid email address");
    await expect422({ ...EMAIL, from: "a b@c" }, "body.from", "Sender must be a valid email address");
    const { body: _b, attachments: _a, ...noContent } = EMAIL;
    await expect422(noContent, "body.body", "Message must have body or attachments");
  });

  it("orders details by the request table and skips format checks without a type", async () => {
    const answer = await expect422({ to: 5, from: "x" }, "body.type");
    expect(answer.details).toEqual([
      { path: "body.type", message: "Field required" },
      { path: "body.to", message: "Expected string" },
      { path: "body.body", message: "Message must have body or attachments" },
    ]);
  });

  it("enforces size and shape limits (case 15)", async () => {
    await expect422({ ...SMS, body: "x".repeat(1601) }, "body.body", "Body must be at most 1600 characters for SMS/MMS");
    expect((await send({ ...SMS, body: "x".repeat(1600) })).res.status).toBe(201);
    await expect422({ ...SMS, attachments: ["ftp://x/y"] }, "body.attachments.0", "Attachment must be an absolute http(s) URL");
    await expect422({ ...SMS, attachments: ["https://a.example/1", "/rel"] }, "body.attachments.1");
    await expect422({ ...SMS, attachments: Array.from({ length: 11 }, (_, i) => `https://a.example/${i}`) }, "body.attachments", "At most 10 attachments are allowed");
    await expect422({ ...SMS, metadata: { blob: "x".repeat(9000) } }, "body.metadata", "Metadata must be at most 8192 bytes");
    await expect422({ ...SMS, metadata: [1] }, "body.metadata", "Metadata must be a JSON object");
    await expect422({ ...EMAIL, body: "é".repeat(51_201) }, "body.body", "Body must be at most 102400 bytes for email");
    expect((await send({ ...SMS, foo: 1 })).res.status).toBe(201);
  });

  it("answers 413, 415 and 422 for bodies that cannot be read as JSON (case 7)", async () => {
    const big = await call("/api/v1/messages/send", jsonRequest("POST", JSON.stringify({ ...SMS, body: "x".repeat(300_000) })));
    expect(big.status).toBe(413);
    expect((await big.json<any>()).error).toBe("payload_too_large");
    const text = await call("/api/v1/messages/send", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify(SMS) });
    expect(text.status).toBe(415);
    expect((await text.json<any>()).error).toBe("unsupported_media_type");
    const broken = await call("/api/v1/messages/send", jsonRequest("POST", "{not json"));
    expect(broken.status).toBe(422);
    expect((await broken.json<any>()).details[0].path).toBe("body");
    // A byte body gets no implicit Content-Type, unlike a string body.
    const noType = await call("/api/v1/messages/send", { method: "POST", body: new TextEncoder().encode(JSON.stringify(SMS)) });
    expect(noType.status).toBe(201);
    const vendor = await call("/api/v1/messages/send", jsonRequest("POST", SMS, { "content-type": "application/vnd.api+json; charset=utf-8" }));
    expect(vendor.status).toBe(201);
    const nul = await call("/api/v1/messages/send", jsonRequest("POST", { ...SMS, metadata: { note: "a\u0000b" } }));
    expect(nul.status).toBe(422);
    expect((await nul.json<any>()).details[0].path).toBe("body");
  });

  it("stores nothing for a rejected request", async () => {
    const pair = freshPair();
    await send({ ...SMS, ...pair, attachments: ["ftp://nope"] });
    const { body } = await getJson(`/api/v1/conversations?participant=${encodeURIComponent(pair.to)}`);
    expect(body.total).toBe(0);
  });

  it("counts SMS segments (case 21)", async () => {
    const segments = async (text: string) => (await send({ ...SMS, body: text })).body.segments;
    expect(await segments("Hello")).toBe(1);
    expect(await segments("a".repeat(160))).toBe(1);
    expect(await segments("a".repeat(161))).toBe(2);
    expect(await segments(`${"a".repeat(69)}😀`)).toBe(2);
    expect(await segments("{".repeat(80))).toBe(1);
    expect(await segments("{".repeat(81))).toBe(2);
  });
});

describe("GET /api/v1/messages", () => {
  it("gets one message, 404 for an unknown id, 422 for a malformed id (case 16)", async () => {
    const { body } = await sendPending(SMS);
    const got = await getJson(`/api/v1/messages/${body.id}`);
    expect(got.res.status).toBe(200);
    expect(got.body).toEqual(body);
    const missing = await getJson(`/api/v1/messages/${crypto.randomUUID()}`);
    expect(missing.res.status).toBe(404);
    expect(missing.body).toEqual({ error: "not_found", message: "Message not found", details: null });
    const malformed = await getJson("/api/v1/messages/abc");
    expect(malformed.res.status).toBe(422);
    expect(malformed.body.details[0].path).toBe("path.message_id");
  });

  it("lists with and without a trailing slash, paginates, and validates limits (cases 17, 18)", async () => {
    for (let i = 0; i < 3; i++) await send(SMS);
    for (const path of ["/api/v1/messages?limit=10", "/api/v1/messages/?limit=10"]) {
      const { res, body } = await getJson(path);
      expect(res.status).toBe(200);
      expect(Object.keys(body).sort()).toEqual(["limit", "messages", "offset", "total", "total_capped"]);
    }
    const page = await getJson("/api/v1/messages?limit=2");
    expect(page.body.messages).toHaveLength(2);
    expect(page.body.total).toBeGreaterThanOrEqual(3);
    for (const q of ["limit=0", "limit=101", "offset=-1", "limit=abc", "status=nope", "conversation_id=xyz"]) {
      expect((await getJson(`/api/v1/messages?${q}`)).res.status, q).toBe(422);
    }
  });

  it("orders newest first with ties broken by id, so pages never overlap", async () => {
    const pair = freshPair();
    const first = await send({ ...SMS, ...pair });
    for (let i = 0; i < 4; i++) await send({ ...SMS, ...pair });
    const all = await getJson(`/api/v1/messages?conversation_id=${first.body.conversation_id}&limit=100`);
    expect(all.body.total).toBe(5);
    const ids: string[] = [];
    for (let offset = 0; offset < 5; offset += 2) {
      const page = await getJson(`/api/v1/messages?conversation_id=${first.body.conversation_id}&limit=2&offset=${offset}`);
      ids.push(...page.body.messages.map((m: any) => m.id));
    }
    expect(ids).toEqual(all.body.messages.map((m: any) => m.id));
    expect(new Set(ids).size).toBe(5);
    const past = await getJson(`/api/v1/messages?conversation_id=${first.body.conversation_id}&offset=100`);
    expect(past.body.messages).toEqual([]);
    expect(past.body.total).toBe(5);
  });

  it("counts the total up to 10,000 matches: exact below, capped and said so above", async () => {
    const pair = freshPair();
    const { body: first } = await sendPending({ ...SMS, ...pair });
    // 10,000 more to the same recipient, inserted as the send route stores them (rows only).
    await sql(
      `insert into messages (id, conversation_id, provider, direction, status, type, from_address, to_address, body, segments)
       select gen_random_uuid(), $1, 'twilio', 'outbound', 'delivered', 'sms', $2, $3, 'bulk ' || g, 1 from generate_series(1, 9999) g`,
      [first.conversation_id, pair.from, pair.to],
    );
    const exact = await getJson(`/api/v1/messages?to=${encodeURIComponent(pair.to)}&limit=1`);
    expect([exact.body.total, exact.body.total_capped]).toEqual([10_000, false]);
    await sql(
      `insert into messages (id, conversation_id, provider, direction, status, type, from_address, to_address, body, segments)
       values (gen_random_uuid(), $1, 'twilio', 'outbound', 'delivered', 'sms', $2, $3, 'one more', 1)`,
      [first.conversation_id, pair.from, pair.to],
    );
    const capped = await getJson(`/api/v1/messages?to=${encodeURIComponent(pair.to)}&limit=1`);
    expect([capped.body.total, capped.body.total_capped]).toEqual([10_000, true]);
    expect(capped.body.messages).toHaveLength(1);
    // The legacy list keeps its exact total.
    const legacy = await getJson(`/api/conversations/${first.conversation_id}/messages?limit=1`);
    expect(legacy.body.total).toBe(10_001);
  });
});

describe("status changes and retry", () => {
  const patch = (id: string, body: unknown) => call(`/api/v1/messages/${id}/status`, jsonRequest("PATCH", body));

  it("PATCH moves forward and persists merged metadata (case 23)", async () => {
    const { body } = await sendPending({ ...SMS, metadata: { keep: 1, drop: 2 } });
    const res = await patch(body.id, { status: "delivered", metadata: { provider_response: "ok", drop: null } });
    expect(res.status).toBe(200);
    const updated = await res.json<any>();
    expect(updated.status).toBe("delivered");
    expect(updated.delivered_at).not.toBeNull();
    const again = await getJson(`/api/v1/messages/${body.id}`);
    expect(again.body.metadata).toEqual({ keep: 1, provider_response: "ok" });
    const { body: timeline } = await getJson(`/api/v1/messages/${body.id}/events`);
    expect(timeline.events.at(-1)).toMatchObject({ type: "status_changed", data: { from: "pending", to: "delivered", source: "api" } });
  });

  it("PATCH refuses unknown statuses and backward moves, changing nothing (case 24)", async () => {
    const { body } = await sendPending(SMS);
    const invalid = await patch(body.id, { status: "invalid_status" });
    expect(invalid.status).toBe(422);
    expect((await invalid.json<any>()).message).toBe("status must be one of: pending, queued, sending, sent, delivered, undelivered, failed, retry");
    await patch(body.id, { status: "delivered" });
    const back = await patch(body.id, { status: "sent", metadata: { x: 1 } });
    expect(back.status).toBe(409);
    expect(await back.json()).toEqual({ error: "invalid_transition", message: "Cannot change status from delivered to sent", details: { from: "delivered", to: "sent" } });
    const after = await getJson(`/api/v1/messages/${body.id}`);
    expect(after.body.status).toBe("delivered");
    expect(after.body.metadata).toEqual({});
    const same = await patch(body.id, { status: "delivered", metadata: { y: 2 } });
    expect(same.status).toBe(200);
    expect((await same.json<any>()).metadata).toEqual({ y: 2 });
    expect((await patch(crypto.randomUUID(), { status: "sent" })).status).toBe(404);
  });

  it("retry refuses a pending message and resets a failed one (cases 22, 25)", async () => {
    const { body } = await sendPending(SMS);
    const refused = await call(`/api/v1/messages/${body.id}/retry`, { method: "POST" });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: "bad_request", message: "Cannot retry message with status: pending", details: null });
    await patch(body.id, { status: "failed" });
    const retried = await call(`/api/v1/messages/${body.id}/retry`, { method: "POST", headers: { "content-type": "text/plain" }, body: "ignored" });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ status: "pending", attempts: 0, error: null });
    const { body: timeline } = await getJson(`/api/v1/messages/${body.id}/events`);
    // The worker may already be sending it again: look at the events the retry itself wrote.
    const types: string[] = timeline.events.map((e: any) => e.type);
    const requested = types.indexOf("retry_requested");
    expect(requested).toBeGreaterThan(0);
    expect(types[requested + 1]).toBe("enqueued");
    expect(timeline.events[requested + 1].data).toEqual({ queue: "sms", reason: "retry_request" });
    expect((await call(`/api/v1/messages/${crypto.randomUUID()}/retry`, { method: "POST" })).status).toBe(404);
  });

  it("events of an unknown message are 404 (case 20)", async () => {
    expect((await getJson(`/api/v1/messages/${crypto.randomUUID()}/events`)).res.status).toBe(404);
  });
});
