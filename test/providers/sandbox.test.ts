// The provider sandbox's callbacks are what Twilio and SendGrid would send: Twilio status
// callbacks signed with HMAC-SHA1 over URL + sorted params, SendGrid events signed with ECDSA
// P-256 over timestamp + body. Verified here with WebCrypto, independently of the sandbox's code.
import { describe, expect, it } from "vitest";
import { createSendGrid } from "../../src/providers/sendgrid";
import { createTwilio } from "../../src/providers/twilio";
import {
  SANDBOX_CREDENTIALS,
  fault,
  outbound,
  producedCallbacks,
  programme,
  received,
  rejection,
  sandboxConfig,
  sandboxInfo,
  sandboxUrl,
  strayRequests,
  uniqueEmail,
  uniquePhone,
  type CallbackRecord,
} from "../helpers/sandbox";

const bytes = (s: string) => new TextEncoder().encode(s);
const fromBase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function twilioSignature(token: string, url: string, body: string): Promise<string> {
  const params = [...new URLSearchParams(body)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = await crypto.subtle.importKey("raw", bytes(token), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, bytes(url + params.map(([n, v]) => n + v).join("")));
  return btoa(String.fromCharCode(...new Uint8Array(mac)));
}

/** DER SEQUENCE{INTEGER r, INTEGER s} → 64-byte r‖s, as WebCrypto wants it. */
function derToRaw(der: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  let offset = 2;
  for (let i = 0; i < 2; i++) {
    const length = der[offset + 1]!;
    let value = der.subarray(offset + 2, offset + 2 + length);
    while (value.length > 32 && value[0] === 0) value = value.subarray(1);
    out.set(value, 32 * (i + 1) - value.length);
    offset += 2 + length;
  }
  return out;
}

async function sendgridSignatureValid(publicKey: string, record: CallbackRecord, body = record.body): Promise<boolean> {
  const key = await crypto.subtle.importKey("spki", fromBase64(publicKey), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  const signature = derToRaw(fromBase64(record.headers["x-twilio-email-event-webhook-signature"]!));
  const payload = bytes(record.headers["x-twilio-email-event-webhook-timestamp"]! + body);
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, payload);
}

describe("provider sandbox callbacks", () => {
  it("holds Twilio status callbacks sent → delivered for a message with a StatusCallback, form-encoded and correctly signed with the auth token", async () => {
    const to = uniquePhone();
    const message = outbound({ type: "sms", to, from: "+15551112222" });
    const { providerMessageId } = await createTwilio(sandboxConfig()).send(message);

    const callbacks = await producedCallbacks(to);
    expect(callbacks.map((c) => c.status)).toEqual(["sent", "delivered"]);
    for (const callback of callbacks) {
      expect(callback).toMatchObject({ provider: "twilio", mode: "hold", delivered: false, providerMessageId });
      expect(callback.url).toBe(`https://msg.example.com/api/v1/webhooks/twilio?message_id=${message.id}`);
      expect(callback.headers["content-type"]).toBe("application/x-www-form-urlencoded");
      const params = Object.fromEntries(new URLSearchParams(callback.body));
      expect(params).toMatchObject({
        MessageSid: providerMessageId,
        SmsSid: providerMessageId,
        MessageStatus: callback.status,
        SmsStatus: callback.status,
        AccountSid: SANDBOX_CREDENTIALS.twilioAccountSid,
        From: "+15551112222",
        To: to,
        ApiVersion: "2010-04-01",
      });
      expect(callback.headers["x-twilio-signature"]).toBe(await twilioSignature(SANDBOX_CREDENTIALS.twilioAuthToken, callback.url, callback.body));
    }
    expect(Object.fromEntries(new URLSearchParams(callbacks[1]!.body)).RawDlrDoneDate).toMatch(/^\d{10}$/);
  });

  it("starts the callbacks at queued for a Messaging Service message (Twilio sends none for the initial accepted)", async () => {
    const to = uniquePhone();
    await createTwilio(sandboxConfig({ TWILIO_MESSAGING_SERVICE_SID: "MG0123456789abcdef0123456789abcdef" })).send(outbound({ type: "sms", to }));
    const callbacks = await producedCallbacks(to);
    expect(callbacks.map((c) => c.status)).toEqual(["queued", "sent", "delivered"]);
    expect(new URLSearchParams(callbacks[0]!.body).get("MessagingServiceSid")).toBe("MG0123456789abcdef0123456789abcdef");
  });

  it("duplicates and reverses callbacks when asked, and adds ErrorCode to an undelivered one", async () => {
    const to = uniquePhone();
    await programme(to, [], { statuses: ["sent", "undelivered"], duplicate: true, reverse: true, errorCode: "30006" });
    await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to }));
    const callbacks = await producedCallbacks(to);
    expect(callbacks.map((c) => c.status)).toEqual(["undelivered", "undelivered", "sent", "sent"]);
    expect(callbacks[0]!.body).toBe(callbacks[1]!.body);
    expect(new URLSearchParams(callbacks[0]!.body).get("ErrorCode")).toBe("30006");
  });

  it("produces no callback when the send carried no StatusCallback, or when callbacks are off for the recipient", async () => {
    const bare = uniquePhone();
    await createTwilio(sandboxConfig({ PUBLIC_BASE_URL: undefined })).send(outbound({ type: "sms", to: bare }));
    expect(await producedCallbacks(bare)).toHaveLength(0);

    const off = uniquePhone();
    await programme(off, [], { mode: "off" });
    await createTwilio(sandboxConfig()).send(outbound({ type: "sms", to: off }));
    expect(await producedCallbacks(off)).toHaveLength(0);
  });

  it("posts callbacks in post mode: they arrive at the StatusCallback URL with the signature header", async () => {
    const to = uniquePhone();
    await programme(to, [], { mode: "post", delayMs: 0 });
    const message = outbound({ type: "sms", to });
    await createTwilio(sandboxConfig({ PUBLIC_BASE_URL: sandboxUrl() })).send(message);

    let arrived: Awaited<ReturnType<typeof strayRequests>> = [];
    for (let i = 0; i < 50 && arrived.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      arrived = (await strayRequests()).filter((r) => r.query === `message_id=${message.id}`);
    }
    expect(arrived.map((r) => (r.body as Record<string, string>).MessageStatus)).toEqual(["sent", "delivered"]);
    expect(arrived[0]!.path).toBe("/api/v1/webhooks/twilio");
    const url = `${sandboxUrl()}/api/v1/webhooks/twilio?message_id=${message.id}`;
    expect(arrived[0]!.headers["x-twilio-signature"]).toBe(await twilioSignature(SANDBOX_CREDENTIALS.twilioAuthToken, url, arrived[0]!.rawBody));
    expect((await producedCallbacks(to)).every((c) => c.delivered && c.responseStatus === 404)).toBe(true);
  });

  it("posts SendGrid events again when they are not answered 2xx, as SendGrid does (Twilio callbacks are not retried)", async () => {
    const to = uniqueEmail();
    // A path the sandbox answers 404: every post of the events lands among its stray requests.
    const path = `/events-${crypto.randomUUID()}`;
    await programme(to, [], { mode: "post", delayMs: 0, statuses: ["delivered"], url: `${sandboxUrl()}${path}` });
    await createSendGrid(sandboxConfig()).send(outbound({ type: "email", to }));
    const posts = async () => (await strayRequests()).filter((r) => r.path === path).length;
    const deadline = Date.now() + 5000;
    while ((await posts()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await posts()).toBe(2);
  });

  it("holds SendGrid events processed → delivered carrying our message_id and the X-Message-Id, signed with ECDSA P-256 over timestamp + body", async () => {
    const to = uniqueEmail();
    await programme(to, [], { url: "https://msg.example.com/api/v1/webhooks/sendgrid" });
    const message = outbound({ type: "email", to });
    const { providerMessageId } = await createSendGrid(sandboxConfig()).send(message);
    const { sendgrid } = await sandboxInfo();
    expect(sendgrid.webhookPublicKey).toBe(SANDBOX_CREDENTIALS.sendgridWebhookPublicKey);

    const events = await producedCallbacks(to);
    expect(events.map((e) => e.status)).toEqual(["processed", "delivered"]);
    for (const record of events) {
      const [event, ...more] = JSON.parse(record.body) as Record<string, unknown>[];
      expect(more).toHaveLength(0);
      expect(event).toMatchObject({ email: to, event: record.status, message_id: message.id });
      expect(String(event!.sg_message_id).startsWith(`${providerMessageId}.`)).toBe(true);
      expect(event!.sg_event_id).toEqual(expect.any(String));
      expect(await sendgridSignatureValid(sendgrid.webhookPublicKey, record)).toBe(true);
      // Re-serialised JSON (here: pretty-printed) no longer verifies.
      expect(await sendgridSignatureValid(sendgrid.webhookPublicKey, record, JSON.stringify(JSON.parse(record.body), null, 1))).toBe(false);
    }
  });
});

describe("provider sandbox faults", () => {
  it("gives every recipient under a prefix the fault's outcomes in turn until cleared; a recipient's own programme comes first", async () => {
    // An area code no other test uses, so that the outage touches only these recipients.
    const prefix = `+1505${String(Math.floor(Math.random() * 9000) + 1000)}`;
    const [a, b, own] = [`${prefix}001`, `${prefix}002`, `${prefix}003`];
    const outside = uniquePhone();
    const twilio = createTwilio(sandboxConfig());
    await fault(prefix, ["500", "429:3"]);
    await programme(own, ["ok"]);

    expect((await rejection(twilio.send(outbound({ type: "sms", to: a })))).opts.httpStatus).toBe(500);
    const limited = await rejection(twilio.send(outbound({ type: "sms", to: b })));
    expect([limited.opts.httpStatus, limited.opts.retryAfter]).toEqual([429, 3]);
    expect((await rejection(twilio.send(outbound({ type: "sms", to: b })))).opts.httpStatus).toBe(500);
    await expect(twilio.send(outbound({ type: "sms", to: own }))).resolves.toMatchObject({ providerMessageId: expect.any(String) });
    await expect(twilio.send(outbound({ type: "sms", to: outside }))).resolves.toMatchObject({ providerMessageId: expect.any(String) });

    await fault(prefix, []);
    await expect(twilio.send(outbound({ type: "sms", to: a }))).resolves.toMatchObject({ providerMessageId: expect.any(String) });
    expect((await received(a)).map((r) => r.outcome)).toEqual(["500", "ok"]);
    expect((await received(b)).map((r) => r.outcome)).toEqual(["429:3", "500"]);
  });
});
