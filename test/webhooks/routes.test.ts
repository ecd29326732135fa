// Proves the generic, status and legacy webhook routes (§6.4, §6.5, §7.3-7.4; cases 54, 56), webhook metrics, and that a delivery failing with 5xx leaves no dedupe record, so its retry is processed (§6.1).
import { afterEach, describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { call } from "../helpers/http";
import {
  FORM,
  SG,
  TW,
  TWILIO_SETTINGS,
  eventsOf,
  messageOf,
  messagesWithProviderId,
  postJson,
  postTwilio,
  postTwilioForm,
  query,
  sentMessage,
  signTwilio,
  twilioForm,
  uniqueId,
} from "../helpers/webhooks";
import { freshPair } from "../helpers/fixtures";
import { sql as raw } from "../helpers/db";

/** A fresh pair as Twilio names the fields. */
function twilioPair() {
  const { from, to } = freshPair();
  return { From: from, To: to };
}

const LEGACY_OK = { status: "success", message: "Webhook processed" };

async function stats(provider: string) {
  const res = await call(`/api/v1/webhooks/status/${provider}`);
  expect(res.status).toBe(200);
  return res.json<any>();
}

describe("generic webhook route", () => {
  it("processes TW as Twilio and answers with a summary; unknown providers are 400 (case 54)", async () => {
    const payload = { ...TW, messaging_provider_id: uniqueId("generic_") };
    const res = await postJson("/api/v1/webhooks/generic/twilio", payload);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await res.json<any>();
    expect(body).toMatchObject({ status: "ok", result: { status: "success", kind: "inbound_message" } });
    const [stored] = await messagesWithProviderId(payload.messaging_provider_id);
    expect(body.result.message_id).toBe(stored!.id);
    expect(body.result.conversation_id).toBe((await messageOf(stored!.id)).conversation_id);

    const again = await (await postJson("/api/v1/webhooks/generic/twilio", payload)).json<any>();
    expect(again.result).toEqual({ ...body.result, status: "duplicate" });

    const custom = await postJson("/api/v1/webhooks/generic/custom", payload);
    expect(custom.status).toBe(400);
    expect(await custom.json()).toEqual({ error: "bad_request", message: "Unknown provider: custom", details: null });

    const sg = await (await postJson("/api/v1/webhooks/generic/sendgrid", { ...SG, xillio_id: uniqueId("g") })).json<any>();
    expect(sg.result).toMatchObject({ status: "success", kind: "inbound_message" });
  });

  it("summarises status callbacks as success, ignored or duplicate", async () => {
    const message = await sentMessage("sms");
    const post = (status: string, messageSid = message.providerMessageId) =>
      call(`/api/v1/webhooks/generic/twilio?message_id=${message.id}`, { method: "POST", headers: { "content-type": FORM }, body: twilioForm({ MessageSid: messageSid, MessageStatus: status }) }).then((r) => r.json<any>());
    expect((await post("delivered")).result).toEqual({ status: "success", kind: "status_callback", message_id: message.id });
    expect((await post("delivered")).result).toEqual({ status: "duplicate", kind: "status_callback", message_id: message.id });
    expect((await post("sent")).result).toEqual({ status: "ignored", kind: "status_callback", message_id: message.id, reason: "out_of_order" });
    expect((await post("sent", uniqueId("SM"))).result).toEqual({ status: "ignored", kind: "status_callback", message_id: null, reason: "unmatched" });
  });

  it("verifies the Twilio signature against the generic route's own URL", async () => {
    const form = twilioForm({ MessageSid: uniqueId("SM"), ...twilioPair(), Body: "generic signed" });
    const path = "/api/v1/webhooks/generic/twilio";
    const own = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}${path}`, form);
    const v1 = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}/api/v1/webhooks/twilio`, form);
    expect((await postTwilio(path, form, { contentType: FORM, signature: v1 }, TWILIO_SETTINGS)).status).toBe(403);
    expect((await postTwilio(path, form, { contentType: FORM, signature: own }, TWILIO_SETTINGS)).status).toBe(200);
  });
});

describe("legacy webhook routes", () => {
  it("answers TW (message-1) and SG (message-3) with the legacy body, also when repeated (case 56)", async () => {
    for (let i = 0; i < 2; i++) {
      const sms = await postJson("/api/webhooks/sms", { ...TW, messaging_provider_id: "message-1" });
      expect(sms.status).toBe(200);
      expect(await sms.json()).toEqual(LEGACY_OK);
      const email = await postJson("/api/webhooks/email", { ...SG, xillio_id: "message-3" });
      expect(email.status).toBe(200);
      expect(await email.json()).toEqual(LEGACY_OK);
    }
    expect(await messagesWithProviderId("message-1")).toHaveLength(1);
    expect(await messagesWithProviderId("message-3")).toHaveLength(1);
    // the same dedupe as the v1 routes
    await postJson("/api/v1/webhooks/twilio", { ...TW, messaging_provider_id: "message-1" });
    expect(await messagesWithProviderId("message-1")).toHaveLength(1);
  });

  it("signs /api/webhooks/sms with its own path, and errors keep the JSON envelope", async () => {
    const form = twilioForm({ MessageSid: uniqueId("SM"), ...twilioPair(), Body: "legacy" });
    const signature = await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}/api/webhooks/sms`, form);
    const ok = await postTwilio("/api/webhooks/sms", form, { contentType: FORM, signature }, TWILIO_SETTINGS);
    expect(await ok.json()).toEqual(LEGACY_OK);
    const forbidden = await postTwilio("/api/webhooks/sms", form, { contentType: FORM, signature: "nope" }, TWILIO_SETTINGS);
    expect(forbidden.status).toBe(403);
    expect((await forbidden.json<any>()).error).toBe("forbidden");
    expect((await postJson("/api/webhooks/email", {})).status).toBe(400);
    expect((await call("/api/webhooks/email", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" })).status).toBe(415);
  });
});

describe("webhook status route", () => {
  it("reports 24-hour statistics of deliveries that passed the signature check (case 54)", async () => {
    const before = await stats("twilio");
    expect(before).toMatchObject({ provider: "twilio", signature_verification: "disabled" });
    expect(Object.keys(before.statistics).sort()).toEqual(["error_webhooks_24h", "last_webhook_at", "processed_webhooks_24h", "total_webhooks_24h"]);

    await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: uniqueId("SM"), ...twilioPair(), Body: "counted" });
    await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: uniqueId("SM"), Body: "no From: 400, counted as an error" });
    await postTwilio("/api/v1/webhooks/twilio", twilioForm({ MessageSid: uniqueId("SM") }), { contentType: FORM, signature: "bad" }, TWILIO_SETTINGS);
    await postTwilio("/api/v1/webhooks/twilio", "x", { contentType: "text/plain" });

    const after = await stats("twilio");
    expect(after.statistics.total_webhooks_24h - before.statistics.total_webhooks_24h).toBe(2);
    expect(after.statistics.processed_webhooks_24h - before.statistics.processed_webhooks_24h).toBe(1);
    expect(after.statistics.error_webhooks_24h - before.statistics.error_webhooks_24h).toBe(1);
    expect(after.statistics.last_webhook_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const verifying = await call("/api/v1/webhooks/status/twilio", {}, TWILIO_SETTINGS);
    expect((await verifying.json<any>()).signature_verification).toBe("enabled");
    expect((await stats("sendgrid")).provider).toBe("sendgrid");
  });

  it("reports zeros for internal and mock, 400 for unknown providers, and needs the bearer key", async () => {
    for (const provider of ["internal", "mock"]) {
      expect(await stats(provider)).toEqual({
        provider,
        status: "not_configured",
        signature_verification: "disabled",
        statistics: { total_webhooks_24h: 0, processed_webhooks_24h: 0, error_webhooks_24h: 0, last_webhook_at: null },
      });
    }
    const unknown = await call("/api/v1/webhooks/status/unknown");
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ error: "bad_request", message: "Unknown provider: unknown", details: null });
    expect((await call("/api/v1/webhooks/status/twilio", {}, { API_KEYS: "k1" })).status).toBe(401);
    const authed = await call("/api/v1/webhooks/status/twilio", { headers: { authorization: "Bearer k1" } }, { API_KEYS: "k1" });
    expect(authed.status).toBe(200);
    expect(authed.headers.get("x-ratelimit-limit")).not.toBeNull();
  });
});

describe("webhook metrics", () => {
  it("counts deliveries by provider, kind and result, with no ids in labels", async () => {
    const payload = { ...TW, messaging_provider_id: uniqueId("metric_") };
    await postJson("/api/v1/webhooks/twilio", payload);
    await postJson("/api/v1/webhooks/twilio", payload);
    await postJson("/api/v1/webhooks/twilio", "{broken");
    const text = await (await call("/metrics")).text();
    expect(text).toMatch(/webhook_requests_total\{provider="twilio",kind="inbound_message",result="processed"\} \d+/);
    expect(text).toMatch(/webhook_requests_total\{provider="twilio",kind="inbound_message",result="duplicate"\} \d+/);
    expect(text).toMatch(/webhook_requests_total\{provider="twilio",kind="unknown",result="rejected"\} \d+/);
  });
});

describe("a delivery that fails with 5xx", () => {
  // A trigger that fails the effect's last write stands in for any failure after the dedupe insert.
  // Several commands in one string: the simple query protocol of the test's own pool, not the app's client.
  const failOn = (field: string, value: string) =>
    raw(`
      create or replace function webhook_test_fail() returns trigger language plpgsql as $$
      begin
        if new.data->>'${field}' = '${value}' then raise exception 'injected failure'; end if;
        return new;
      end $$;
      drop trigger if exists webhook_test_fail on message_events;
      create trigger webhook_test_fail before insert on message_events for each row execute function webhook_test_fail();`);

  afterEach(async () => {
    await raw(`drop trigger if exists webhook_test_fail on message_events; drop function if exists webhook_test_fail();`);
  });

  it("stores nothing, not even its dedupe record, so the redelivery creates the message", async () => {
    const sid = uniqueId("SM");
    const form = { MessageSid: sid, ...twilioPair(), Body: "retry me" };
    await failOn("provider_message_id", sid);
    const failed = await postTwilioForm("/api/v1/webhooks/twilio", form);
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect((await failed.json<any>()).error).toMatch(/internal_error|service_unavailable/);
    expect(await messagesWithProviderId(sid)).toHaveLength(0);
    expect(await query(sql`select 1 from processed_webhook_events where event_key like ${`%${sid}%`}`)).toHaveLength(0);

    await raw(`drop trigger webhook_test_fail on message_events`);
    const retried = await postTwilioForm("/api/v1/webhooks/twilio", form);
    expect(retried.status).toBe(200);
    expect(await messagesWithProviderId(sid)).toHaveLength(1);
  });

  it("records a SendGrid batch all or nothing (one statement): after a failure nothing of it is kept, and the retry applies it whole", async () => {
    const email = await sentMessage("email");
    const [first, failing, last] = [uniqueId("ok-"), uniqueId("fail-"), uniqueId("late-")];
    const batch = [
      { event: "processed", sg_event_id: first, message_id: email.id },
      { event: "delivered", sg_event_id: failing, message_id: email.id, timestamp: 1736937000 },
      { event: "open", sg_event_id: last, message_id: email.id },
    ];
    await failOn("provider_event_id", failing);
    const failed = await postJson("/api/v1/webhooks/sendgrid", batch);
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect((await messageOf(email.id)).status).toBe("sent");
    expect((await eventsOf(email.id)).filter((e) => e.type === "callback_received")).toEqual([]);
    expect(await query(sql`select 1 from processed_webhook_events where event_key like ${`%${first}%`}`)).toHaveLength(0);

    await raw(`drop trigger webhook_test_fail on message_events`);
    const retried = await postJson("/api/v1/webhooks/generic/sendgrid", batch);
    expect((await retried.json<any>()).result).toMatchObject({ received: 3, applied: 1, duplicates: 0 });
    expect((await messageOf(email.id)).status).toBe("delivered");
    expect((await eventsOf(email.id)).filter((e) => e.type === "callback_received").map((e) => e.data.provider_event_id)).toEqual([first, failing, last]);
  });
});
