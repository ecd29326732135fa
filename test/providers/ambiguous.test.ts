// Ambiguous attempts: a provider that may have accepted a message without our knowing. The client
// must say so (timeout, ambiguous), and Twilio's lookup must find a message that was accepted, so
// that reconcile sends it only when no match exists.
import { describe, expect, it } from "vitest";
import { createSendGrid } from "../../src/providers/sendgrid";
import { createTwilio } from "../../src/providers/twilio";
import { DEAD_URL } from "../helpers/http";
import { SANDBOX_CREDENTIALS, acceptedTwilioMessages, outbound, programme, received, rejection, sandboxConfig, uniqueEmail, uniquePhone } from "../helpers/sandbox";

const config = () => sandboxConfig({ PROVIDER_TIMEOUT_MS: "300" });

describe("ambiguous provider outcomes", () => {
  it("turns a create that Twilio accepted and then never answered into an ambiguous timeout, and lookup finds that message by its sid", async () => {
    const to = uniquePhone();
    await programme(to, ["accept-then-hang"]);
    const message = outbound({ type: "sms", to, body: "Your table is ready" });
    const twilio = createTwilio(config());

    const error = await rejection(twilio.send(message));
    expect(error).toMatchObject({ errorClass: "timeout", code: "timeout", opts: { ambiguous: true } });

    const [accepted, ...others] = await acceptedTwilioMessages(to);
    expect(others).toHaveLength(0);
    const found = await twilio.lookup!({ ...message, attempt: 2, ambiguousAttempt: true });
    expect(found).toEqual({ providerMessageId: accepted!.sid, providerStatus: accepted!.status, httpStatus: 200 });
  });

  it("looks up with GET Messages.json filtered by To, From and DateSent> (the creation day in UTC), PageSize 50, with the same Basic auth", async () => {
    const to = uniquePhone();
    const message = outbound({ type: "sms", to, from: "+15557654321", createdAt: "2025-03-04T12:00:00.000Z" });
    await createTwilio(config()).lookup!(message);
    const [request] = await received(to);
    expect(request!.method).toBe("GET");
    expect(request!.path).toBe(`/2010-04-01/Accounts/${SANDBOX_CREDENTIALS.twilioAccountSid}/Messages.json`);
    expect(Object.fromEntries(new URLSearchParams(request!.query))).toEqual({ To: to, From: "+15557654321", "DateSent>": "2025-03-04", PageSize: "50" });
    expect(request!.headers.authorization).toBe(`Basic ${btoa(`${SANDBOX_CREDENTIALS.twilioAccountSid}:${SANDBOX_CREDENTIALS.twilioAuthToken}`)}`);
  });

  it("finds nothing after a hang that Twilio never accepted, so the next send is the only message that reaches it", async () => {
    const to = uniquePhone();
    await programme(to, ["hang"]);
    const message = outbound({ type: "sms", to });
    const twilio = createTwilio(config());
    expect(await rejection(twilio.send(message))).toMatchObject({ errorClass: "timeout", opts: { ambiguous: true } });

    expect(await twilio.lookup!({ ...message, ambiguousAttempt: true })).toBeNull();
    const sent = await twilio.send({ ...message, attempt: 2 });
    expect((await acceptedTwilioMessages(to)).map((m) => m.sid)).toEqual([sent.providerMessageId]);
  });

  it("does not take another message to the same recipient for ours: a different body, sender or media count does not match", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(config());
    await twilio.send(outbound({ type: "sms", to, body: "something else" }));
    await twilio.send(outbound({ type: "sms", to, from: "+15550000042", body: "ours" }));
    await twilio.send(outbound({ type: "mms", to, body: "ours", attachments: ["https://cdn.example.com/x.jpg"] }));
    expect(await twilio.lookup!(outbound({ type: "sms", to, body: "ours" }))).toBeNull();
  });

  it("follows next_page_uri: the accepted message is found behind a full page of newer messages to the same recipient", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(config());
    await programme(to, ["accept-then-hang"]);
    const ours = outbound({ type: "sms", to, body: "the one we lost" });
    await rejection(twilio.send(ours));
    for (let i = 0; i < 55; i++) await twilio.send(outbound({ type: "sms", to, body: `newer ${i}` }));

    const found = await twilio.lookup!({ ...ours, ambiguousAttempt: true });
    const [oldest] = await acceptedTwilioMessages(to);
    expect(found?.providerMessageId).toBe(oldest!.sid);
    expect((await received(to)).filter((r) => r.method === "GET")).toHaveLength(2);
  });

  it("leaves From out of the lookup when a Messaging Service picks the sender", async () => {
    const to = uniquePhone();
    const twilio = createTwilio(sandboxConfig({ TWILIO_MESSAGING_SERVICE_SID: "MG0123456789abcdef0123456789abcdef" }));
    const message = outbound({ type: "sms", to });
    const sent = await twilio.send(message);
    expect((await twilio.lookup!(message))?.providerMessageId).toBe(sent.providerMessageId);
    const get = (await received(to)).find((r) => r.method === "GET")!;
    expect(new URLSearchParams(get.query).has("From")).toBe(false);
  });

  it("reports a failed lookup as ambiguous: it did not rule out that the earlier attempt was accepted", async () => {
    const twilio = createTwilio(sandboxConfig({ TWILIO_API_BASE_URL: DEAD_URL }));
    const error = await rejection(twilio.lookup!(outbound({ type: "sms", to: uniquePhone(), ambiguousAttempt: true })));
    expect(error.opts.ambiguous).toBe(true);
  });

  it("turns a SendGrid send accepted and then never answered into an ambiguous timeout", async () => {
    const to = uniqueEmail();
    await programme(to, ["accept-then-hang"]);
    const error = await rejection(createSendGrid(config()).send(outbound({ type: "email", to })));
    expect(error).toMatchObject({ errorClass: "timeout", code: "timeout", opts: { ambiguous: true } });
  });
});
