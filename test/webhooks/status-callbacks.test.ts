// Proves Twilio status callbacks (§9.2, §2.2; case 49): forward-only moves, callback_received with applied/reason, dedupe on MessageSid:MessageStatus, duplicates and reverse order leaving one delivered message, unmatched callbacks storing nothing.
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { Client } from "@neondatabase/serverless";
import { configureNeon } from "../../src/db/client";
import { sql as rawSql } from "../helpers/db";
import {
  TWILIO_SETTINGS,
  FORM,
  eventsOf,
  messageOf,
  postTwilio,
  postTwilioForm,
  query,
  sentMessage,
  signTwilio,
  statusCallback,
  storedCounts,
  twilioForm,
  uniqueId,
} from "../helpers/webhooks";

const callbacks = (events: { type: string; data: Record<string, any> }[]) => events.filter((e) => e.type === "callback_received").map((e) => e.data);
const statusChanges = (events: { type: string; data: Record<string, any> }[]) => events.filter((e) => e.type === "status_changed").map((e) => e.data);

async function expectTwiml(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/xml");
  expect(await res.text()).toBe("<Response></Response>");
}

describe("Twilio status callbacks", () => {
  it("delivered applies; a later sent is recorded out_of_order; delivered again adds nothing; undelivered carries the error (case 49)", async () => {
    const message = await sentMessage("sms");
    await expectTwiml(await statusCallback(message, "delivered"));
    const delivered = await messageOf(message.id);
    expect(delivered.status).toBe("delivered");
    expect(delivered.delivered_at).toMatch(/Z$/);

    await expectTwiml(await statusCallback(message, "sent"));
    expect((await messageOf(message.id)).status).toBe("delivered");
    const afterSent = await eventsOf(message.id);
    expect(callbacks(afterSent)).toEqual([
      { provider: "twilio", provider_status: "delivered", provider_event_id: `${message.providerMessageId}:delivered`, applied: true, reason: null },
      { provider: "twilio", provider_status: "sent", provider_event_id: `${message.providerMessageId}:sent`, applied: false, reason: "out_of_order" },
    ]);
    expect(statusChanges(afterSent)).toEqual([{ from: "sent", to: "delivered", source: "callback" }]);

    await expectTwiml(await statusCallback(message, "delivered"));
    expect(await eventsOf(message.id)).toHaveLength(afterSent.length);

    const other = await sentMessage("sms");
    await expectTwiml(await statusCallback(other, "undelivered", { ErrorCode: "30003" }));
    const undelivered = await messageOf(other.id);
    expect(undelivered.status).toBe("undelivered");
    expect(undelivered.error).toEqual({ code: "30003", message: "Twilio error 30003" });
  });

  it("the same signed callbacks posted twice and in reverse order leave one delivered message and show the ignored ones", async () => {
    const message = await sentMessage("sms");
    const path = `/api/v1/webhooks/twilio?message_id=${message.id}`;
    const deliveries = await Promise.all(
      ["queued", "sent", "delivered"].map(async (status) => {
        const form = twilioForm({ MessageSid: message.providerMessageId, MessageStatus: status, AccountSid: "AC1", To: message.to, From: message.from });
        return { form, signature: await signTwilio(`${TWILIO_SETTINGS.PUBLIC_BASE_URL}${path}`, form) };
      }),
    );
    // reverse order, each twice
    for (const { form, signature } of [...deliveries].reverse().flatMap((d) => [d, d])) {
      await expectTwiml(await postTwilio(path, form, { contentType: FORM, signature }, TWILIO_SETTINGS));
    }
    const final = await messageOf(message.id);
    expect(final.status).toBe("delivered");
    const events = await eventsOf(message.id);
    expect(callbacks(events).map((d) => [d.provider_status, d.applied, d.reason])).toEqual([
      ["delivered", true, null],
      ["sent", false, "out_of_order"],
      ["queued", false, "out_of_order"],
    ]);
    expect(statusChanges(events)).toEqual([{ from: "sent", to: "delivered", source: "callback" }]);
    const [count] = await query<{ n: number }>(sql`select count(*)::int as n from messages where provider_message_id = ${message.providerMessageId}`);
    expect(count!.n).toBe(1);
  });

  it("records a repeat of the current status as no_status_change and an unknown status as unknown_status", async () => {
    const message = await sentMessage("sms");
    await expectTwiml(await statusCallback(message, "sent"));
    await expectTwiml(await statusCallback(message, "mystery"));
    expect((await messageOf(message.id)).status).toBe("sent");
    expect(callbacks(await eventsOf(message.id)).map((d) => [d.provider_status, d.applied, d.reason])).toEqual([
      ["sent", false, "no_status_change"],
      ["mystery", false, "unknown_status"],
    ]);
  });

  it("maps failed and canceled to failed, with ErrorMessage when given, and refuses moves out of a terminal status", async () => {
    const message = await sentMessage("sms");
    await expectTwiml(await statusCallback(message, "failed", { ErrorCode: "30007", ErrorMessage: "Carrier violation" }));
    expect((await messageOf(message.id)).error).toEqual({ code: "30007", message: "Carrier violation" });
    await expectTwiml(await statusCallback(message, "delivered"));
    const final = await messageOf(message.id);
    expect(final.status).toBe("failed");
    expect(callbacks(await eventsOf(message.id)).at(-1)).toMatchObject({ provider_status: "delivered", applied: false, reason: "out_of_order" });

    const canceled = await sentMessage("sms");
    await expectTwiml(await statusCallback(canceled, "canceled"));
    expect((await messageOf(canceled.id)).status).toBe("failed");
  });

  it("matches by SID without ?message_id, and by message_id while the provider id is not yet stored", async () => {
    const bySid = await sentMessage("sms");
    await expectTwiml(await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: bySid.providerMessageId, MessageStatus: "delivered" }));
    expect((await messageOf(bySid.id)).status).toBe("delivered");

    const early = await sentMessage("sms");
    await query(sql`update messages set status = 'sending', provider_message_id = null where id = ${early.id}`);
    await expectTwiml(await statusCallback(early, "sent"));
    const stored = await messageOf(early.id);
    expect(stored).toMatchObject({ status: "sent", provider_message_id: early.providerMessageId });
    expect(stored.sent_at).not.toBeNull();
  });

  it("stores nothing for a callback that matches no message, so a later redelivery still applies", async () => {
    const message = await sentMessage("sms");
    const before = await storedCounts([message.id]);
    await expectTwiml(await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: uniqueId("SM"), MessageStatus: "delivered" }));
    // our id with another message's SID: no match
    await expectTwiml(await postTwilioForm(`/api/v1/webhooks/twilio?message_id=${message.id}`, { MessageSid: uniqueId("SM"), MessageStatus: "delivered" }));
    await expectTwiml(await postTwilioForm(`/api/v1/webhooks/twilio?message_id=not-a-uuid`, { MessageSid: message.providerMessageId, MessageStatus: "delivered" }));
    expect(await storedCounts([message.id])).toEqual(before);

    const later = uniqueId("SM");
    await expectTwiml(await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: later, MessageStatus: "delivered" }));
    await query(sql`update messages set provider_message_id = ${later} where id = ${message.id}`);
    await expectTwiml(await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: later, MessageStatus: "delivered" }));
    expect((await messageOf(message.id)).status).toBe("delivered");
  });

  it("identical twins given each other's SIDs by reconcile: each callback applies to the twin holding its SID, both end delivered (found by the chaos suite)", async () => {
    const x = await sentMessage("sms");
    const y = await sentMessage("sms", undefined, { from: x.from, to: x.to });
    // Reconcile paired the twins with the provider's copies the wrong way round.
    await query(sql`update messages set provider_message_id = null where id in (${x.id}, ${y.id})`);
    await query(sql`update messages set provider_message_id = ${y.providerMessageId} where id = ${x.id}`);
    await query(sql`update messages set provider_message_id = ${x.providerMessageId} where id = ${y.id}`);
    // Twilio's callbacks name the message whose request made the copy, and that copy's SID.
    await expectTwiml(await statusCallback(x, "delivered"));
    await expectTwiml(await statusCallback(y, "delivered"));
    for (const m of [x, y]) expect((await messageOf(m.id)).status).toBe("delivered");
    expect(callbacks(await eventsOf(y.id))).toEqual([
      { provider: "twilio", provider_status: "delivered", provider_event_id: `${x.providerMessageId}:delivered`, applied: true, reason: null, named_message_id: x.id },
    ]);

    // Not for a message that is no twin: another text to the same pair holding the SID.
    const other = await sentMessage("sms", undefined, { from: x.from, to: x.to });
    await query(sql`update messages set body = 'another text' where id = ${other.id}`);
    const stranger = await sentMessage("sms", undefined, { from: x.from, to: x.to });
    await query(sql`update messages set provider_message_id = ${uniqueId("SM")} where id = ${stranger.id}`);
    const named = [x.id, y.id, other.id, stranger.id];
    const before = await storedCounts(named);
    await expectTwiml(await statusCallback({ ...stranger, providerMessageId: other.providerMessageId }, "delivered"));
    expect(await storedCounts(named)).toEqual(before);
    expect((await messageOf(other.id)).status).toBe("sent");
  });

  it("applies a callback that had to wait for the worker's record of the same message (found by the chaos suite)", async () => {
    const message = await sentMessage("sms");
    await query(sql`update messages set status = 'sending' where id = ${message.id}`);
    // The worker records "sent" in a transaction held open: the row is locked and changed.
    configureNeon({ NEON_WS_PROXY: env.NEON_WS_PROXY });
    const worker = new Client({ connectionString: env.DATABASE_URL });
    worker.on("error", () => undefined);
    await worker.connect();
    try {
      await worker.query("begin");
      await worker.query("update messages set status = 'sent' where id = $1", [message.id]);
      // The callback's statement starts (its snapshot still says sending) and waits for the lock.
      const callback = statusCallback(message, "delivered");
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const [waiting] = await rawSql<{ n: number }>("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
        if (waiting!.n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await worker.query("commit");
      await expectTwiml(await callback);
    } finally {
      await worker.end();
    }
    expect((await messageOf(message.id)).status).toBe("delivered");
    const events = await eventsOf(message.id);
    expect(statusChanges(events)).toEqual([{ from: "sent", to: "delivered", source: "callback" }]);
    expect(callbacks(events)).toEqual([expect.objectContaining({ provider_status: "delivered", applied: true, reason: null })]);
  });

  it("applies concurrent duplicate callbacks once", async () => {
    const message = await sentMessage("sms");
    const responses = await Promise.all(Array.from({ length: 5 }, () => statusCallback(message, "delivered")));
    for (const res of responses) await expectTwiml(res);
    const events = await eventsOf(message.id);
    expect(callbacks(events)).toHaveLength(1);
    expect(statusChanges(events)).toHaveLength(1);
  });

  it("treats an inbound form whose SID is already an outbound message's provider id as a duplicate, not an error", async () => {
    const message = await sentMessage("sms");
    const before = await storedCounts([message.id]);
    await expectTwiml(await postTwilioForm("/api/v1/webhooks/twilio", { MessageSid: message.providerMessageId, From: message.to, To: message.from, Body: "x" }));
    expect(await storedCounts([message.id])).toEqual(before);
  });
});
