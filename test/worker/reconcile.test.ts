// Exact attribution after an ambiguous attempt, end to end with the worker, the Twilio client and
// a sandbox as strict as Twilio: a provider message (SID) goes to at most one of our messages, an
// identical message sent earlier (by us or by someone else) is never taken for ours, a message
// Twilio still holds is found and not resent, and a message we cannot attribute is held, never
// resent or called sent.
import { describe, expect, it } from "vitest";
import { send, SMS } from "../helpers/fixtures";
import { acceptedTwilioMessages, insertForeignMessage, programme, received, twilioMessages, uniquePhone } from "../helpers/sandbox";
import { sql } from "../helpers/db";
import { dueNow, settle } from "../helpers/worker";
import { getJson } from "../helpers/fixtures";

const FINAL_OR_HELD = (m: any) => ["sent", "failed", "held"].includes(m.status);
const creates = async (to: string) => (await received(to)).filter((r) => r.method === "POST");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Twilio's timestamps have whole seconds, and the window allows RECONCILE_CLOCK_SKEW_MS (2 s) either side. */
const pastTheWindow = () => sleep(4_000);

async function events(id: string) {
  return (await getJson(`/api/v1/messages/${id}/events?limit=500`)).body.events as { type: string; data: any }[];
}

/** Sends, lets the attempt end ambiguous, then lets the callback window pass. */
async function ambiguous(body: Record<string, unknown>) {
  const { body: message } = await send(body);
  await settle(message.id, (m) => m.status === "retry");
  await dueNow(message.id);
  return message.id as string;
}

describe("reconcile attribution", () => {
  it("two identical SMS to one recipient, the second accepted and then hung: both sent with their own SIDs, one provider call each", async () => {
    const to = uniquePhone();
    const body = { ...SMS, to, body: "Your code is 428913" };
    const first = (await send(body)).body;
    expect((await settle(first.id, (m) => m.status === "sent")).provider_message_id).toMatch(/^SM/);
    await programme(to, ["accept-then-hang"]);
    const second = await ambiguous(body);
    const final = await settle(second, FINAL_OR_HELD);
    expect(final.status).toBe("sent");
    const accepted = await acceptedTwilioMessages(to);
    expect(accepted).toHaveLength(2);
    expect(new Set([(await settle(first.id, () => true)).provider_message_id, final.provider_message_id])).toEqual(new Set(accepted.map((m) => m.sid)));
    expect(await creates(to)).toHaveLength(2);
  });

  it("an identical message sent just before by someone else (at Twilio, not ours): ours is sent once and gets its own SID", async () => {
    const to = uniquePhone();
    const foreign = await insertForeignMessage({ to, from: SMS.from, body: "Meeting at 3" });
    await pastTheWindow();
    await programme(to, ["hang"]);
    const id = await ambiguous({ ...SMS, to, body: "Meeting at 3" });
    const final = await settle(id, FINAL_OR_HELD);
    expect(final.status).toBe("sent");
    expect(final.provider_message_id).not.toBe(foreign.sid);
    expect(await acceptedTwilioMessages(to)).toHaveLength(1);
    expect(final.provider_message_id).toBe((await acceptedTwilioMessages(to))[0]!.sid);
  });

  it("a message Twilio still holds (queued, no date_sent) is found, not sent a second time", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang"], { hold: true });
    const id = await ambiguous({ ...SMS, to });
    const final = await settle(id, FINAL_OR_HELD);
    expect(final.status).toBe("sent");
    const [held, ...others] = await twilioMessages(to);
    expect(others).toEqual([]);
    expect(held).toMatchObject({ status: "queued", date_sent: null });
    expect(final.provider_message_id).toBe(held!.sid);
    expect(await creates(to)).toHaveLength(1);
  });

  it("identical ambiguous messages pair one-to-one with the SIDs Twilio created for them: none resent, no SID twice", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang", "accept-then-hang"]);
    const body = { ...SMS, to, body: "Reminder: your appointment is tomorrow" };
    const [a, b] = await Promise.all([send(body), send(body)]);
    for (const m of [a!.body, b!.body]) await settle(m.id, (x) => x.status === "retry");
    for (const m of [a!.body, b!.body]) await dueNow(m.id);
    const finals = [await settle(a!.body.id, FINAL_OR_HELD), await settle(b!.body.id, FINAL_OR_HELD)];
    expect(finals.map((m) => m.status)).toEqual(["sent", "sent"]);
    const sids = (await acceptedTwilioMessages(to)).map((m) => m.sid);
    expect(sids).toHaveLength(2);
    expect(new Set(finals.map((m) => m.provider_message_id))).toEqual(new Set(sids));
    expect(await creates(to)).toHaveLength(2);
  });

  it("two provider messages inside the window but only one message of ours (someone else sent the same text meanwhile): the message is held, neither resent nor called sent", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang"]);
    const { body } = await send({ ...SMS, to, body: "Door code 7781" });
    await settle(body.id, (m) => m.status === "retry");
    // Another system sends the same text to the same number during our attempt.
    const attempt = (await events(body.id)).find((e) => e.type === "attempt")!;
    const [window] = (await sql<{ w: { started_at: string }[] }>("select ambiguous_windows as w from messages where id = $1", [body.id]))[0]!.w;
    await insertForeignMessage({ to, from: SMS.from, body: "Door code 7781", date_created: new Date(Date.parse(window!.started_at) + 100).toUTCString() });
    expect(attempt.data).toMatchObject({ error_class: "timeout" });
    await dueNow(body.id);
    const final = await settle(body.id, FINAL_OR_HELD);
    expect(final).toMatchObject({ status: "held", provider_message_id: null, error: { code: "attribution_uncertain" } });
    expect(await creates(to)).toHaveLength(1);
    const held = (await events(body.id)).filter((e) => e.type === "attempt").at(-1)!;
    expect(held.data).toMatchObject({ outcome: "held", error_code: "attribution_uncertain", provider_called: false });
    const stats = (await getJson("/api/v1/queue/stats")).body;
    expect(stats.queues.sms.held).toBeGreaterThanOrEqual(1);
  });
});
