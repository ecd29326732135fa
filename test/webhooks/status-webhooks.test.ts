// Status webhooks to the API user (issue 15 §1): endpoint CRUD and URL rules; events delivered
// through the WebhookWorker with signatures that the `standardwebhooks` package (a real receiver's
// library) accepts; a receiver answering 500 then 200 gets the event twice at most, with the same
// webhook-id; sequence grows per message; status_callback; a hanging receiver is bounded; an
// endpoint failing for days is disabled; give-up after the schedule; redelivery; message.received.
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { loadConfig } from "../../src/config";
import { emitMessageWebhook, sign } from "../../src/services/outbound-webhooks";
import { WebhookEndpoint, WebhookEndpointWithSecret, WebhookEventList } from "../../src/validation/webhook-endpoints";
import { webhookUrlProblem } from "../../src/validation/webhook-url";
import { openDatabase } from "../../src/db/client";
import { sweep } from "../../src/index";
import { claim, recordOutcomes } from "../../src/queue/processing";
import { sql } from "../helpers/db";
import { freshPair, getJson, send, sendPending } from "../helpers/fixtures";
import { call, jsonRequest } from "../helpers/http";
import { drainWebhooks, newReceiver, programmeReceiver, receivedBy, type ReceivedWebhook } from "../helpers/receiver";
import { programme } from "../helpers/sandbox";
import { eventsOf, postTwilioForm, sentMessage, statusCallback, uniqueId } from "../helpers/webhooks";
import { settle, waitFor } from "../helpers/worker";

const SIGNING_SECRET = (env as unknown as { WEBHOOK_SIGNING_SECRET: string }).WEBHOOK_SIGNING_SECRET;
const created: string[] = [];

async function createEndpoint(body: Record<string, unknown>) {
  const res = await call("/api/v1/webhook-endpoints", jsonRequest("POST", body));
  const json = await res.json<any>();
  if (res.status === 201) created.push(json.id);
  return { res, body: json };
}

/** An endpoint posting to a fresh receiver name. */
async function endpointWithReceiver(events?: string[]) {
  const receiver = newReceiver();
  const { res, body } = await createEndpoint({ url: receiver.url, ...(events ? { events } : {}) });
  expect(res.status).toBe(201);
  return { ...receiver, id: body.id as string, secret: body.secret as string };
}

afterEach(async () => {
  // Endpoints get every message's events: remove this test's so the next test's counts are its own.
  for (const id of created.splice(0)) await call(`/api/v1/webhook-endpoints/${id}`, { method: "DELETE" });
});

const bodyOf = (r: ReceivedWebhook) => JSON.parse(r.rawBody);
const forMessage = (received: ReceivedWebhook[], id: string) => received.filter((r) => bodyOf(r).data.id === id);

/** Deliveries to `name` about message `id`, driving the webhook worker until `done` holds. */
function deliveries(name: string, id: string, done: (r: ReceivedWebhook[]) => boolean, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      await drainWebhooks();
      return forMessage(await receivedBy(name), id);
    },
    done,
    timeoutMs,
  );
}

async function sentSms(extra: Record<string, unknown> = {}) {
  const { res, body } = await send({ type: "sms", ...freshPair(), body: "webhook test", ...extra });
  expect(res.status).toBe(201);
  await settle(body.id, (m) => m.status === "sent");
  return body.id as string;
}

const webhookAttempts = async (id: string) => (await eventsOf(id)).filter((e) => e.type === "webhook_attempt").map((e) => e.data);

describe("webhook endpoints: CRUD and validation", () => {
  it("creates with a whsec_ secret shown once, lists, reads, patches, rotates and deletes", async () => {
    const receiver = newReceiver();
    const { res, body } = await createEndpoint({ url: receiver.url, description: "orders" });
    expect(res.status).toBe(201);
    expect(body).toMatchObject({ url: receiver.url, description: "orders", enabled: true, disabled_reason: null });
    expect(body.events).toEqual(["message.sent", "message.delivered", "message.undelivered", "message.failed", "message.canceled", "message.received"]);
    expect(body.created_at).toMatch(/Z$/);
    expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(atob(body.secret.slice(6)).length).toBeGreaterThanOrEqual(24);
    // the answers are what the OpenAPI document says they are
    WebhookEndpointWithSecret.parse(body);

    const one = await getJson(`/api/v1/webhook-endpoints/${body.id}`);
    expect(one.res.status).toBe(200);
    expect(one.body.secret).toBeUndefined();
    expect(one.body.id).toBe(body.id);
    WebhookEndpoint.strict().parse(one.body);
    const list = await getJson("/api/v1/webhook-endpoints?limit=100");
    expect(list.body.endpoints.map((e: any) => e.id)).toContain(body.id);
    expect(list.body.endpoints.every((e: any) => e.secret === undefined)).toBe(true);

    const patched = await call(`/api/v1/webhook-endpoints/${body.id}`, jsonRequest("PATCH", { events: ["message.failed"], description: null }));
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ events: ["message.failed"], description: null, url: receiver.url });

    const rotated = await call(`/api/v1/webhook-endpoints/${body.id}/rotate-secret`, { method: "POST" });
    expect(rotated.status).toBe(200);
    const rotatedBody = await rotated.json<any>();
    expect(rotatedBody.secret).toMatch(/^whsec_/);
    expect(rotatedBody.secret).not.toBe(body.secret);

    expect((await call(`/api/v1/webhook-endpoints/${body.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await getJson(`/api/v1/webhook-endpoints/${body.id}`)).res.status).toBe(404);
    expect((await call(`/api/v1/webhook-endpoints/${body.id}/rotate-secret`, { method: "POST" })).status).toBe(404);
  });

  it("refuses bad fields with 422 and the path of each", async () => {
    const cases: [unknown, string][] = [
      [{}, "body.url"],
      [{ url: "not a url" }, "body.url"],
      [{ url: "ftp://example.com/x" }, "body.url"],
      [{ url: "https://example.com/x", events: ["message.exploded"] }, "body.events.0"],
      [{ url: "https://example.com/x", events: "message.sent" }, "body.events"],
      [{ url: "https://example.com/x", description: 5 }, "body.description"],
    ];
    for (const [body, path] of cases) {
      const res = await call("/api/v1/webhook-endpoints", jsonRequest("POST", body));
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect((await res.json<any>()).details.map((d: any) => d.path)).toContain(path);
    }
    expect((await call("/api/v1/webhook-endpoints/not-a-uuid")).status).toBe(422);
    expect((await call(`/api/v1/webhook-endpoints/${crypto.randomUUID()}`)).status).toBe(404);
  });

  it("outside development only https to a public host name is accepted", async () => {
    const production = { ENVIRONMENT: "production", API_KEYS: "k1" };
    const refused = [
      "http://example.com/hook",
      "https://localhost/hook",
      "https://api.localhost/hook",
      "https://10.1.2.3/hook",
      "https://127.0.0.1:8443/hook",
      "https://169.254.169.254/latest",
      "https://192.168.0.10/hook",
      "https://172.20.0.1/hook",
      "https://[::1]/hook",
      "https://[fd00::1]/hook",
      "https://[::ffff:127.0.0.1]/hook",
      "https://2130706433/hook",
      "https://intranet/hook",
      "https://user:pw@example.com/hook",
    ];
    for (const url of refused) {
      const res = await call("/api/v1/webhook-endpoints", jsonRequest("POST", { url }, { authorization: "Bearer k1" }), production);
      expect(res.status, url).toBe(422);
      expect((await res.json<any>()).details[0].path).toBe("body.url");
    }
    const res = await call("/api/v1/webhook-endpoints", jsonRequest("POST", { url: "https://hooks.example.com/x" }, { authorization: "Bearer k1" }), production);
    expect(res.status).toBe(201);
    created.push((await res.json<any>()).id);
    expect(webhookUrlProblem({ ENVIRONMENT: "production" }, "https://8.8.8.8/hook")).toBeNull();
    expect(webhookUrlProblem({ ENVIRONMENT: "development" }, "http://127.0.0.1:9/x")).toBeNull();
  });

  it("arbitrary bodies and URLs never make a 5xx, and the URL rule never throws", async () => {
    const url = fc.oneof(
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.string(),
      fc.ipV4().map((ip) => `https://${ip}/x`),
      fc.ipV6().map((ip) => `https://[${ip}]/x`),
      fc.constantFrom("https://\ud800.example/x", "https://ex ample.com", "https://example.com:99999/", "javascript:alert(1)", "https://" + "a".repeat(3000)),
    );
    fc.assert(fc.property(url, fc.constantFrom("production", "development"), (u, environment) => {
      const problem = webhookUrlProblem({ ENVIRONMENT: environment }, u);
      return problem === null || typeof problem === "string";
    }), { numRuns: 500 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({ url: fc.oneof(url, fc.jsonValue()), events: fc.oneof(fc.jsonValue(), fc.array(fc.constantFrom("message.sent", "message.failed", "x"))), description: fc.jsonValue() }, { requiredKeys: [] }),
        async (body) => {
          const res = await call("/api/v1/webhook-endpoints", jsonRequest("POST", body));
          expect(res.status).toBeLessThan(500);
          if (res.status === 201) created.push((await res.json<any>()).id);
          else await res.body?.cancel();
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the default attempt timeout is 10 s and the default schedule spans about a day", () => {
    const defaults = loadConfig({ DATABASE_URL: "postgres://x", UPSTASH_REDIS_REST_URL: "https://r", UPSTASH_REDIS_REST_TOKEN: "t" });
    expect(defaults.WEBHOOK_TIMEOUT_MS).toBe(10_000);
    const total = defaults.WEBHOOK_RETRY_SCHEDULE.reduce((a, b) => a + b, 0);
    expect(total / 3600).toBeGreaterThan(20);
    expect(total / 3600).toBeLessThan(30);
    expect(() => loadConfig({ DATABASE_URL: "postgres://x", UPSTASH_REDIS_REST_URL: "https://r", UPSTASH_REDIS_REST_TOKEN: "t", WEBHOOK_SIGNING_SECRET: "whsec_c2hvcnQ=" })).toThrow(
      /WEBHOOK_SIGNING_SECRET/,
    );
  });
});

describe("status webhook delivery", () => {
  it("message.sent arrives signed per Standard Webhooks: the standardwebhooks package verifies it, data is the message as the API shows it", async () => {
    const endpoint = await endpointWithReceiver();
    const id = await sentSms();
    const [delivery] = await deliveries(endpoint.name, id, (r) => r.length >= 1);
    const verified = new Webhook(endpoint.secret).verify(delivery!.rawBody, delivery!.headers) as any;
    expect(verified.type).toBe("message.sent");
    expect(delivery!.headers["webhook-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(delivery!.headers["webhook-timestamp"])).toBeGreaterThan(Date.now() / 1000 - 300);
    expect(delivery!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(delivery!.headers["content-type"]).toBe("application/json");
    expect(verified.timestamp).toMatch(/Z$/);
    const { sequence, ...message } = verified.data;
    expect(typeof sequence).toBe("number");
    expect(message).toEqual((await getJson(`/api/v1/messages/${id}`)).body);
    // A tampered body or another secret is refused by the same library.
    expect(() => new Webhook(endpoint.secret).verify(delivery!.rawBody.replace("sent", "sént"), delivery!.headers)).toThrow();
    expect(() => new Webhook(SIGNING_SECRET).verify(delivery!.rawBody, delivery!.headers)).toThrow();

    const [attempt] = await webhookAttempts(id);
    expect(attempt).toMatchObject({ webhook_id: delivery!.headers["webhook-id"], event: "message.sent", endpoint_id: endpoint.id, attempt: 1, status: 200, outcome: "delivered" });
    expect(typeof attempt!.duration_ms).toBe("number");
    const events = await getJson(`/api/v1/webhook-events?message_id=${id}`);
    WebhookEventList.parse(events.body);
    expect(events.body.events).toEqual([expect.objectContaining({ id: delivery!.headers["webhook-id"], status: "delivered", attempts: 1, last_status_code: 200 })]);
    // only a prefix of the answer is kept
    expect(events.body.events[0].last_response.length).toBeLessThanOrEqual(256);
  });

  it("the worker's doorbell delivers it without anyone draining the webhook worker", async () => {
    const endpoint = await endpointWithReceiver(["message.sent"]);
    const id = await sentSms();
    const [got] = await waitFor(
      async () => forMessage(await receivedBy(endpoint.name), id),
      (r) => r.length >= 1,
    );
    const message = (await getJson(`/api/v1/messages/${id}`)).body;
    // the figure for the report: from the outcome's commit (sent_at) to the receiver's clock
    console.log(JSON.stringify({ webhook_latency_ms: Date.parse(got!.time) - Date.parse(message.sent_at) }));
  });

  it("our signature equals the one standardwebhooks computes for the same id, timestamp and body", async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const wh = new Webhook(secret);
    const at = new Date(1_700_000_000_000);
    expect(await sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_700_000_000, '{"a":1}')).toBe(wh.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", at, '{"a":1}'));
  });

  it("a receiver answering 500 then 200 gets the event twice at most, with the same webhook-id and a valid signature both times", async () => {
    const endpoint = await endpointWithReceiver();
    await programmeReceiver(endpoint.name, ["500", "200"]);
    const id = await sentSms();
    const got = await deliveries(endpoint.name, id, (r) => r.length >= 2);
    expect(got.map((r) => r.answer)).toEqual(["500", "200"]);
    expect(got[0]!.headers["webhook-id"]).toBe(got[1]!.headers["webhook-id"]);
    for (const r of got) expect((new Webhook(endpoint.secret).verify(r.rawBody, r.headers) as any).type).toBe("message.sent");
    // nothing more comes: delivered is final
    await new Promise((r) => setTimeout(r, 1500));
    await drainWebhooks();
    expect(forMessage(await receivedBy(endpoint.name), id)).toHaveLength(2);
    const attempts = await webhookAttempts(id);
    expect(attempts.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 500, "error"],
      [2, 200, "delivered"],
    ]);
    expect(attempts[0]!.next_attempt_at).toMatch(/Z$/);
  });

  it("provider callbacks emit message.delivered and message.undelivered; a callback that changes nothing emits nothing", async () => {
    const endpoint = await endpointWithReceiver();
    const message = await sentMessage("sms");
    // sentMessage stores `sent` without the worker: the provider's callbacks move it on.
    expect((await statusCallback(message, "delivered")).status).toBe(200);
    const got = await deliveries(endpoint.name, message.id, (r) => r.length >= 1);
    expect(bodyOf(got[0]!)).toMatchObject({ type: "message.delivered", data: { status: "delivered" } });

    const other = await sentMessage("sms");
    await statusCallback(other, "sent");
    await statusCallback(other, "undelivered", { ErrorCode: "30003" });
    const undelivered = await deliveries(endpoint.name, other.id, (r) => r.length >= 1);
    await drainWebhooks();
    const all = forMessage(await receivedBy(endpoint.name), other.id).map(bodyOf);
    expect(all.map((b) => b.type)).toEqual(["message.undelivered"]);
    expect(bodyOf(undelivered[0]!).data.error).toEqual({ code: "30003", message: "Twilio error 30003" });
  });

  it("sequence grows with each event of one message", async () => {
    const endpoint = await endpointWithReceiver();
    const id = await sentSms();
    const [row] = await sql<{ provider_message_id: string }>("select provider_message_id from messages where id = $1", [id]);
    await statusCallback({ id, providerMessageId: row!.provider_message_id }, "delivered");
    const got = await deliveries(endpoint.name, id, (r) => r.length >= 2);
    const events = got.map(bodyOf).sort((a, b) => a.data.sequence - b.data.sequence);
    expect(events.map((e) => e.type)).toEqual(["message.sent", "message.delivered"]);
    expect(events[1].data.sequence).toBeGreaterThan(events[0].data.sequence);
  });

  it("a send's status_callback gets its events, signed with WEBHOOK_SIGNING_SECRET; only that message's", async () => {
    const receiver = newReceiver();
    const id = await sentSms({ status_callback: receiver.url });
    const got = await deliveries(receiver.name, id, (r) => r.length >= 1);
    const verified = new Webhook(SIGNING_SECRET).verify(got[0]!.rawBody, got[0]!.headers) as any;
    expect(verified).toMatchObject({ type: "message.sent", data: { id, status: "sent" } });
    const other = await sentSms();
    await drainWebhooks();
    expect(forMessage(await receivedBy(receiver.name), other)).toHaveLength(0);
    const [attempt] = await webhookAttempts(id);
    expect(attempt).toMatchObject({ url: receiver.url, status: 200, outcome: "delivered" });
  });

  it("status_callback must be an allowed URL", async () => {
    const bad = await send({ type: "sms", ...freshPair(), body: "x", status_callback: "not a url" });
    expect(bad.res.status).toBe(422);
    expect(bad.body.details[0].path).toBe("body.status_callback");
    const production = await call(
      "/api/v1/messages/send",
      jsonRequest("POST", { type: "sms", ...freshPair(), body: "x", status_callback: "https://192.168.1.1/cb" }, { authorization: "Bearer k1" }),
      { ENVIRONMENT: "production", API_KEYS: "k1" },
    );
    expect(production.status).toBe(422);
    expect((await production.json<any>()).details[0].path).toBe("body.status_callback");
    const unsigned = await call("/api/v1/messages/send", jsonRequest("POST", { type: "sms", ...freshPair(), body: "x", status_callback: "https://example.com/cb" }), {
      WEBHOOK_SIGNING_SECRET: undefined,
    });
    expect(unsigned.status).toBe(422);
  });

  it("message.failed from the worker, and only subscribed types are sent", async () => {
    const endpoint = await endpointWithReceiver(["message.failed"]);
    const pair = freshPair();
    await programme(pair.to, ["21211"]);
    const { body } = await send({ type: "sms", ...pair, body: "will fail" });
    await settle(body.id, (m) => m.status === "failed");
    const got = await deliveries(endpoint.name, body.id, (r) => r.length >= 1);
    expect(bodyOf(got[0]!)).toMatchObject({ type: "message.failed", data: { status: "failed", error: { code: "21211" } } });
    const sent = await sentSms();
    await drainWebhooks();
    expect(forMessage(await receivedBy(endpoint.name), sent)).toHaveLength(0);
  });

  it("message.received for an inbound message", async () => {
    const endpoint = await endpointWithReceiver(["message.received"]);
    const pair = freshPair();
    const sid = uniqueId("SM");
    const res = await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: sid, From: pair.from, To: pair.to, Body: "hello in", NumMedia: "0" });
    expect(res.status).toBe(200);
    const [row] = await sql<{ id: string }>("select id from messages where provider_message_id = $1", [sid]);
    const got = await deliveries(endpoint.name, row!.id, (r) => r.length >= 1);
    expect(bodyOf(got[0]!)).toMatchObject({ type: "message.received", data: { id: row!.id, direction: "inbound", body: "hello in" } });
  });

  it("a hanging receiver is bounded by the timeout, recorded, and retried", async () => {
    const endpoint = await endpointWithReceiver();
    await programmeReceiver(endpoint.name, ["hang"]);
    const id = await sentSms();
    const got = await deliveries(endpoint.name, id, (r) => r.length >= 2);
    expect(got.map((r) => r.answer)).toEqual(["hang", "200"]);
    const attempts = await webhookAttempts(id);
    expect(attempts[0]).toMatchObject({ attempt: 1, outcome: "error" });
    expect(attempts[0]!.error).toMatch(/^timeout/);
    // WEBHOOK_TIMEOUT_MS is 2000 in the tests
    expect(attempts[0]!.duration_ms).toBeGreaterThanOrEqual(1900);
    expect(attempts[0]!.duration_ms).toBeLessThan(5000);
    expect(attempts[1]).toMatchObject({ attempt: 2, status: 200, outcome: "delivered" });
  });

  it("gives up after the retry schedule, records it, and can be redelivered with the same webhook-id", async () => {
    const endpoint = await endpointWithReceiver();
    await programmeReceiver(endpoint.name, ["503", "503", "503", "503"]);
    const id = await sentSms();
    // WEBHOOK_RETRY_SCHEDULE is 0.5,1,2 in the tests: four attempts, then given up
    await waitFor(
      async () => {
        await drainWebhooks();
        return (await getJson(`/api/v1/webhook-events?message_id=${id}`)).body.events[0];
      },
      (e) => e?.status === "failed",
    );
    const attempts = await webhookAttempts(id);
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 503, 503]);
    expect(attempts[3]!.given_up).toBe(true);
    const got = forMessage(await receivedBy(endpoint.name), id);
    expect(got).toHaveLength(4);

    const eventId = got[0]!.headers["webhook-id"]!;
    const redelivered = await call(`/api/v1/webhook-events/${eventId}/redeliver`, { method: "POST" });
    expect(redelivered.status).toBe(202);
    expect(await redelivered.json()).toMatchObject({ id: eventId, status: "pending", attempts: 0 });
    const again = await deliveries(endpoint.name, id, (r) => r.length >= 5);
    expect(again[4]!.headers["webhook-id"]).toBe(eventId);
    expect(new Webhook(endpoint.secret).verify(again[4]!.rawBody, again[4]!.headers)).toBeTruthy();
    expect((await call(`/api/v1/webhook-events/${crypto.randomUUID()}/redeliver`, { method: "POST" })).status).toBe(404);
  });

  it("an endpoint failing for days is disabled, says so, gets no new events, and can be enabled again", async () => {
    const endpoint = await endpointWithReceiver();
    await programmeReceiver(endpoint.name, ["500"]);
    await sql("update webhook_endpoints set failing_since = now() - interval '6 days' where id = $1", [endpoint.id]);
    const id = await sentSms();
    await deliveries(endpoint.name, id, (r) => r.length >= 1);
    const disabled = await waitFor(
      async () => (await getJson(`/api/v1/webhook-endpoints/${endpoint.id}`)).body,
      (e) => e.enabled === false,
    );
    expect(disabled.disabled_at).toMatch(/Z$/);
    expect(disabled.disabled_reason).toMatch(/failing_since/);
    // its pending retry is given up without a request, and new events do not go to it
    const [event] = (await getJson(`/api/v1/webhook-events?message_id=${id}`)).body.events;
    await waitFor(
      async () => {
        await drainWebhooks();
        return (await getJson(`/api/v1/webhook-events?message_id=${id}`)).body.events[0];
      },
      (e) => e.status === "failed",
    );
    expect((await call(`/api/v1/webhook-events/${event.id}/redeliver`, { method: "POST" })).status).toBe(409);
    const later = await sentSms();
    expect((await getJson(`/api/v1/webhook-events?message_id=${later}&endpoint_id=${endpoint.id}`)).body.events).toHaveLength(0);
    expect(forMessage(await receivedBy(endpoint.name), id)).toHaveLength(1);

    const enabled = await call(`/api/v1/webhook-endpoints/${endpoint.id}`, jsonRequest("PATCH", { enabled: true }));
    expect(await enabled.json()).toMatchObject({ enabled: true, disabled_at: null, disabled_reason: null, failing_since: null });
  });
});

describe("an event for every change, and none for a change that did not happen", () => {
  it("the worker recording `sent` after a provider callback already moved the message there emits message.sent once", async () => {
    const endpoint = await endpointWithReceiver(["message.sent"]);
    const { body } = await sendPending({ type: "sms", ...freshPair(), body: "race" });
    const config = loadConfig(env);
    const db = openDatabase(config);
    try {
      const [claimed] = await claim(db, [body.id]);
      expect(claimed).toBeDefined();
      // Twilio's `sent` callback arrives before the worker has recorded its outcome.
      expect((await statusCallback({ id: body.id, providerMessageId: "SM" + crypto.randomUUID().replace(/-/g, "") }, "sent")).status).toBe(200);
      const { recorded } = await recordOutcomes(db, [
        {
          id: body.id,
          type: "sms",
          status: "sent",
          claimSeq: claimed!.claimSeq,
          attempt: claimed!.attempt,
          counted: true,
          durationMs: 5,
          providerName: "twilio",
          evidence: { kind: "alive" },
        },
      ]);
      expect(recorded.has(body.id)).toBe(true);
    } finally {
      await db.end();
    }
    const [row] = await sql<{ n: string }>("select count(*) as n from webhook_events where message_id = $1 and type = 'message.sent'", [body.id]);
    expect(Number(row!.n)).toBe(1);
    await deliveries(endpoint.name, body.id, (r) => r.length >= 1);
  });

  it("the sweep rings the webhook worker for an event whose doorbell was lost, and says so", async () => {
    const endpoint = await endpointWithReceiver(["message.canceled"]);
    const { body } = await sendPending({ type: "sms", ...freshPair(), body: "doorbell lost" });
    const db = openDatabase(loadConfig(env));
    try {
      // committed without ringing the worker: as if the Worker died before its doorbell
      expect(await emitMessageWebhook(db, body.id, "message.canceled")).toBe(1);
    } finally {
      await db.end();
    }
    const result = await sweep(env, { forceDatabase: true });
    expect(result.webhooksDue).toBe(true);
    // no drain: only the sweep's doorbell can get it delivered
    await waitFor(
      async () => forMessage(await receivedBy(endpoint.name), body.id),
      (r) => r.length >= 1,
    );
  });

  it("PATCH status and the sweep's expiry emit their events", async () => {
    const endpoint = await endpointWithReceiver(["message.delivered", "message.failed"]);
    const patched = await sentMessage("sms");
    const res = await call(`/api/v1/messages/${patched.id}/status`, jsonRequest("PATCH", { status: "delivered" }));
    expect(res.status).toBe(200);
    const got = await deliveries(endpoint.name, patched.id, (r) => r.length >= 1);
    expect(bodyOf(got[0]!)).toMatchObject({ type: "message.delivered", data: { id: patched.id, status: "delivered" } });

    const { body } = await sendPending({ type: "sms", ...freshPair(), body: "too old" });
    await sql("update messages set created_at = now() - interval '3 days' where id = $1", [body.id]);
    await sweep(env, { forceDatabase: true });
    const expired = await deliveries(endpoint.name, body.id, (r) => r.length >= 1);
    expect(bodyOf(expired[0]!)).toMatchObject({ type: "message.failed", data: { id: body.id, status: "failed" } });
  });
  it("emitMessageWebhook (for the cancel route) writes message.canceled for the message's endpoints and status_callback", async () => {
    const endpoint = await endpointWithReceiver(["message.canceled"]);
    const callback = newReceiver();
    const { body } = await sendPending({ type: "sms", ...freshPair(), body: "to cancel", status_callback: callback.url });
    const db = openDatabase(loadConfig(env));
    try {
      expect(await emitMessageWebhook(db, body.id, "message.canceled")).toBe(2);
    } finally {
      await db.end();
    }
    const got = await deliveries(endpoint.name, body.id, (r) => r.length >= 1);
    expect(bodyOf(got[0]!)).toMatchObject({ type: "message.canceled", data: { id: body.id } });
    const viaCallback = await deliveries(callback.name, body.id, (r) => r.length >= 1);
    expect(new Webhook(SIGNING_SECRET).verify(viaCallback[0]!.rawBody, viaCallback[0]!.headers)).toMatchObject({ type: "message.canceled" });
  });
});
