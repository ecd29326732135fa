// End-to-end fuzzing of every public write route through the app to Postgres, with generators
// that produce NUL, lone surrogates, huge strings and deeply nested values: no 5xx ever; a refused
// request stores nothing; an accepted inbound message is stored (once, however often delivered).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { sql } from "../helpers/db";
import { freshPair } from "../helpers/fixtures";
import { inboundParse, uniqueId } from "../helpers/webhooks";

const RUNS = { numRuns: 150 };

/**
 * Rows of every table a request may create, summed: unchanged means nothing was stored. (Timeline
 * events are left out: the workers keep adding them for earlier messages meanwhile, and a request
 * never writes one without a row counted here.)
 */
async function stored(): Promise<number> {
  const [row] = await sql<{ n: number }>(`select
    (select count(*) from messages) + (select count(*) from conversations) + (select count(*) from send_fences)
    + (select count(*) from processed_webhook_events) + (select count(*) from opt_outs) + (select count(*) from idempotency_keys) as n`);
  return Number(row!.n);
}

const unstorable = fc.constantFrom("\u0000", "\ud800", "\udfff", "a\u0000b", "\ud83d\u0000\ude00", "\uFFFE", "\u200b", "\\u0000");
const hugeString = fc.integer({ min: 10_000, max: 300_000 }).map((n) => "x".repeat(n));
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }), unstorable, hugeString, fc.constantFrom("", " ", "STOP", "start", "😀".repeat(70)));
/** Nested arrays or objects as raw JSON text, up to depths no provider would send. */
const nested = (maxDepth: number) =>
  fc.integer({ min: 5, max: maxDepth }).chain((depth) => fc.constantFrom("[", '{"a":').map((open) => open.repeat(depth) + "1" + (open === "[" ? "]" : "}").repeat(depth)));
const deep = nested(20_000);
// As values inside a body: shallower, so that the test itself can still JSON.stringify them.
const jsonish = fc.oneof(text, fc.jsonValue({ maxDepth: 6 }), nested(1_000).map((d) => JSON.parse(d) as unknown));

async function neverServerError(res: Response): Promise<void> {
  expect(res.status).toBeLessThan(500);
  if (res.status >= 400) {
    const body = await res.json<any>();
    expect(Object.keys(body).sort()).toEqual(["details", "error", "message"]);
  }
}

describe("fuzz: every public write route, through Postgres", () => {
  it("send (v1 and legacy): 201/200 or a 4xx envelope; a refusal stores nothing", async () => {
    const body = fc.oneof(
      fc.record({ type: fc.constantFrom("sms", "email"), to: fc.constantFrom("+15559876543", "r@example.com"), from: fc.constantFrom("+15551234567", "s@example.com"), body: text, metadata: jsonish }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
      deep,
      text,
    );
    const route = fc.constantFrom("/api/v1/messages/send", "/api/messages/sms", "/api/messages/email");
    const key = fc.option(fc.stringMatching(/^[\x20-\x7e]{1,40}$/), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(route, body, key, async (path, raw, idempotencyKey) => {
        const before = await stored();
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (idempotencyKey) headers["idempotency-key"] = `${idempotencyKey}-${crypto.randomUUID()}`;
        const res = await call(path, { method: "POST", headers, body: raw });
        await neverServerError(res);
        if (res.status >= 400) expect(await stored()).toBe(before);
      }),
      RUNS,
    );
  });

  it("conversations: create, search and patch bodies; a refusal stores nothing", async () => {
    const body = fc.oneof(fc.record({ participant_from: text, participant_to: text, channel_type: fc.constantFrom("sms", "email"), title: text, metadata: jsonish, query: text }, { requiredKeys: [] }).map((b) => JSON.stringify(b)), deep, text);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/api/v1/conversations", "/api/v1/conversations/search"), body, async (path, raw) => {
        const before = await stored();
        const res = await call(path, { method: "POST", headers: { "content-type": "application/json" }, body: raw });
        await neverServerError(res);
        if (res.status >= 400) expect(await stored()).toBe(before);
      }),
      RUNS,
    );
  });

  it("Twilio webhooks (form and JSON, v1 and legacy): an inbound message is stored once however often delivered, a refusal stores nothing", async () => {
    const fields = fc.record({ Body: text, NumMedia: fc.constantFrom("0", "1", "x", ""), MediaUrl0: text, MessageStatus: fc.constantFrom(undefined, "delivered", "sent", "bogus", "\u0000") }, { requiredKeys: ["Body"] });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/api/v1/webhooks/twilio", "/api/webhooks/sms"), fields, fc.boolean(), async (path, extra, asJson) => {
        const pair = freshPair();
        const sid = uniqueId("SM");
        const before = await stored();
        const form: Record<string, string> = { MessageSid: sid, From: pair.to, To: pair.from };
        for (const [k, v] of Object.entries(extra)) if (v !== undefined) form[k] = v;
        const post = () =>
          asJson
            ? call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messaging_provider_id: sid, from: pair.to, to: pair.from, type: "sms", body: extra.Body }) })
            : call(path, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form).toString() });
        const first = await post();
        await neverServerError(first);
        const again = await post();
        await neverServerError(again);
        const rows = await sql<{ n: number }>("select count(*)::int as n from messages where provider_message_id = $1", [sid]);
        const isInbound = asJson || extra.MessageStatus === undefined;
        if (first.status < 300 && isInbound) expect(rows[0]!.n).toBe(1);
        if (first.status >= 400) expect(await stored()).toBe(before);
      }),
      RUNS,
    );
  });

  it("SendGrid webhooks (test JSON, event batches, Inbound Parse): no 5xx; an accepted inbound email is stored once", async () => {
    const payload = fc.oneof(
      fc.record({ kind: fc.constant("json" as const), body: text, subject: text }),
      fc.record({ kind: fc.constant("events" as const), events: fc.array(fc.oneof(fc.record({ event: text, sg_event_id: text, sg_message_id: text, reason: text }, { requiredKeys: [] }), jsonish), { maxLength: 30 }) }),
      fc.record({ kind: fc.constant("parse" as const), body: text, subject: text }),
    );
    await fc.assert(
      fc.asyncProperty(payload, async (p) => {
        const id = uniqueId("sg-");
        const before = await stored();
        let res: Response;
        if (p.kind === "json") {
          res = await call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ xillio_id: id, from: "a@example.com", to: "b@example.com", body: p.body, subject: p.subject }) });
        } else if (p.kind === "events") {
          res = await call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(p.events) });
        } else {
          const { bytes, contentType } = await inboundParse({ from: "a@example.com", to: "b@example.com", subject: `${p.subject}${id}`, text: p.body, headers: `Message-ID: <${id}@example.com>` });
          res = await call("/api/v1/webhooks/sendgrid", { method: "POST", headers: { "content-type": contentType }, body: bytes });
        }
        await neverServerError(res);
        if (res.status >= 400) expect(await stored()).toBe(before);
        if (res.status < 300 && p.kind !== "events") {
          const rows = await sql<{ n: number }>("select count(*)::int as n from messages where direction = 'inbound' and provider = 'sendgrid' and (provider_message_id = $1 or provider_message_id like $2)", [id, `%${id}%`]);
          expect(rows[0]!.n).toBe(1);
        }
      }),
      RUNS,
    );
  });
});
