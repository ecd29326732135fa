// Ambiguous attempts: a provider that may have accepted a message without our knowing. The client
// must say so (timeout, ambiguous), and Twilio's candidate list must show what was created inside
// the attempt's window, including a message Twilio still holds (no date_sent), and nothing else.
import { describe, expect, it } from "vitest";
import { createSendGrid } from "../../src/providers/sendgrid";
import { createTwilio } from "../../src/providers/twilio";
import type { Window } from "../../src/providers/types";
import { DEAD_URL } from "../helpers/http";
import {
  acceptedTwilioMessages,
  insertForeignMessage,
  outbound,
  programme,
  received,
  rejection,
  sandboxConfig,
  uniqueEmail,
  uniquePhone,
} from "../helpers/sandbox";

const config = () => sandboxConfig({ PROVIDER_TIMEOUT_MS: "300", RECONCILE_CLOCK_SKEW_MS: "0" });

/** Runs `work` and returns the window it was in flight. */
async function inFlight(work: () => Promise<unknown>): Promise<Window> {
  const startedAt = Date.now();
  await work().catch(() => undefined);
  return { startedAt, endedAt: Date.now() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ambiguous provider outcomes", () => {
  it("turns a create that Twilio accepted and then never answered into an ambiguous timeout, and lists that message as the candidate", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang"]);
    const message = outbound({ type: "sms", to, body: "Your table is ready" });
    const twilio = createTwilio(config());

    const started = Date.now();
    const error = await rejection(twilio.send(message));
    const window = { startedAt: started, endedAt: Date.now() };
    expect(error).toMatchObject({ errorClass: "timeout", code: "timeout", opts: { ambiguous: true } });

    const [accepted, ...others] = await acceptedTwilioMessages(to);
    expect(others).toHaveLength(0);
    const found = await twilio.listCandidates!({ ...message, attempt: 2, ambiguousAttempt: true }, [window]);
    expect(found).toEqual({ complete: true, candidates: [{ sid: accepted!.sid, status: expect.any(String), createdMs: Date.parse(accepted!.date_created) }] });
  });

  it("finds a message Twilio still holds (queued, no date_sent), which a DateSent filter would miss", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang"], { hold: true });
    const message = outbound({ type: "sms", to });
    const twilio = createTwilio(config());
    const window = await inFlight(() => twilio.send(message));
    const [held] = await acceptedTwilioMessages(to);
    expect(held).toMatchObject({ status: "queued", date_sent: null });
    const found = await twilio.listCandidates!(message, [window]);
    expect(found.candidates.map((c) => c.sid)).toEqual([held!.sid]);
  });

  it("lists with GET Messages.json filtered by To and From only (no date filter), PageSize 1000, with the same Basic auth", async () => {
    const to = uniquePhone();
    const message = outbound({ type: "sms", to, from: "+15557654321" });
    await createTwilio(config()).listCandidates!(message, [{ startedAt: Date.now() - 1000, endedAt: Date.now() }]);
    const [request] = await received(to);
    expect(request!.method).toBe("GET");
    expect(Object.fromEntries(new URLSearchParams(request!.query))).toEqual({ To: to, From: "+15557654321", PageSize: "1000" });
    expect(request!.headers.authorization).toMatch(/^Basic /);
  });

  it("leaves out messages created outside the window: an identical message sent a few seconds earlier is not a candidate", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(config());
    const earlier = outbound({ type: "sms", to, body: "Your code is 1234" });
    await twilio.send(earlier);
    // Twilio's timestamps have whole seconds: the window must start in a later second.
    await sleep(2100);
    await programme(to, ["accept-then-hang"]);
    const ours = outbound({ type: "sms", to, body: "Your code is 1234" });
    const window = await inFlight(() => twilio.send(ours));
    const accepted = await acceptedTwilioMessages(to);
    expect(accepted).toHaveLength(2);
    const found = await twilio.listCandidates!(ours, [window]);
    expect(found.candidates.map((c) => c.sid)).toEqual([accepted[1]!.sid]);
  });

  it("does not match another body, sender or media count, even inside the window", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(config());
    const window = await inFlight(async () => {
      await twilio.send(outbound({ type: "sms", to, body: "something else" }));
      await twilio.send(outbound({ type: "sms", to, from: "+15550000042", body: "ours" }));
      await twilio.send(outbound({ type: "mms", to, body: "ours", attachments: ["https://cdn.example.com/x.jpg"] }));
    });
    expect(await twilio.listCandidates!(outbound({ type: "sms", to, body: "ours" }), [window])).toEqual({ candidates: [], complete: true });
  });

  it("lists a foreign message (another system on the account) inside the window: attribution decides, not the client", async () => {
    const to = uniquePhone();
    const message = outbound({ type: "sms", to, body: "same text" });
    const foreign = await insertForeignMessage({ to, from: message.from, body: "same text" });
    const found = await createTwilio(config()).listCandidates!(message, [{ startedAt: Date.now() - 2000, endedAt: Date.now() }]);
    expect(found.candidates.map((c) => c.sid)).toEqual([foreign.sid]);
  });

  it("leaves From out of the list when a Messaging Service picks the sender", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig({ TWILIO_MESSAGING_SERVICE_SID: "MG0123456789abcdef0123456789abcdef", RECONCILE_CLOCK_SKEW_MS: "0" }));
    const message = outbound({ type: "sms", to });
    let sid = "";
    const window = await inFlight(async () => (sid = (await twilio.send(message)).providerMessageId));
    expect((await twilio.listCandidates!(message, [window])).candidates.map((c) => c.sid)).toEqual([sid]);
    const get = (await received(to)).find((r) => r.method === "GET")!;
    expect(new URLSearchParams(get.query).has("From")).toBe(false);
  });

  it("reports a failed list as ambiguous: it did not rule out that the earlier attempt was accepted", async () => {
    const twilio = createTwilio(sandboxConfig({ TWILIO_API_BASE_URL: DEAD_URL }));
    const error = await rejection(twilio.listCandidates!(outbound({ type: "sms", to: uniquePhone(), ambiguousAttempt: true }), [{ startedAt: 0, endedAt: 1 }]));
    expect(error.opts.ambiguous).toBe(true);
  });

  it("turns a SendGrid send accepted and then never answered into an ambiguous timeout; SendGrid cannot be listed", async () => {
    const to = uniqueEmail();
    await programme(to, ["accept-then-hang"]);
    const sendgrid = createSendGrid(config());
    expect(sendgrid.listCandidates).toBeUndefined();
    const error = await rejection(sendgrid.send(outbound({ type: "email", to })));
    expect(error).toMatchObject({ errorClass: "timeout", code: "timeout", opts: { ambiguous: true } });
  });
});
