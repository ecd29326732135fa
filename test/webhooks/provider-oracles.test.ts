// The providers' own libraries as the judges of our signature checks: Twilio's
// getExpectedTwilioSignature (twilio-node) signs, our route must accept exactly what Twilio's
// validator accepts; SendGrid's @sendgrid/eventwebhook verifies what the SendGrid sandbox signs,
// so the sandbox signs like SendGrid. Each request goes through the public route to Postgres.
import { describe, expect, it } from "vitest";
import { getExpectedTwilioSignature, validateRequest } from "twilio/lib/webhooks/webhooks";
import { EventWebhook } from "@sendgrid/eventwebhook";
import { bytesToBase64 } from "../../src/webhooks/signatures";
import { FORM, messageOf, messagesWithProviderId, postJson, postTwilio, rawToDer, sendgridKeys, sentMessage, TWILIO_SETTINGS, uniqueId } from "../helpers/webhooks";
import { freshPair } from "../helpers/fixtures";

const TOKEN = TWILIO_SETTINGS.TWILIO_AUTH_TOKEN;

function inboundForm(): Record<string, string> {
  const { from, to } = freshPair();
  return { MessageSid: uniqueId("SM").slice(0, 34), AccountSid: "AC" + "0".repeat(32), From: from, To: to, Body: "Hi there, it's me", NumMedia: "0" };
}

/** Posts an inbound SMS to `path`, signed by Twilio's library over `signedUrl`. */
async function postSignedBy(signedUrl: string, path: string, publicBaseUrl: string, fields = inboundForm()) {
  const signature = getExpectedTwilioSignature(TOKEN, signedUrl, fields);
  // What Twilio's own validator says of this request, as the URL Twilio called.
  expect(validateRequest(TOKEN, signature, signedUrl, fields)).toBe(true);
  const res = await postTwilio(path, new URLSearchParams(fields).toString(), { contentType: FORM, signature }, { TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_BASE_URL: publicBaseUrl });
  return { res, sid: fields.MessageSid! };
}

describe("Twilio signatures, judged by twilio-node", () => {
  it("accepts a URL whose query has a raw apostrophe (the runtime hands the Worker %27)", async () => {
    const { res, sid } = await postSignedBy("https://msg.example.com/api/v1/webhooks/twilio?tag=o'brien", "/api/v1/webhooks/twilio?tag=o'brien", "https://msg.example.com");
    expect(res.status).toBe(200);
    expect(await messagesWithProviderId(sid)).toHaveLength(1);
  });

  it("accepts a signature over the URL without :443 when PUBLIC_BASE_URL names the port", async () => {
    const { res, sid } = await postSignedBy("https://msg.example.com/api/v1/webhooks/twilio", "/api/v1/webhooks/twilio", "https://msg.example.com:443");
    expect(res.status).toBe(200);
    expect(await messagesWithProviderId(sid)).toHaveLength(1);
  });

  it("accepts a signature over the URL with :443 when PUBLIC_BASE_URL has no port", async () => {
    const { res } = await postSignedBy("https://msg.example.com:443/api/v1/webhooks/twilio", "/api/v1/webhooks/twilio", "https://msg.example.com");
    expect(res.status).toBe(200);
  });

  it("agrees with twilio-node on parameters: repeated names, unicode, empty values, query strings", async () => {
    const cases: [string, Record<string, string>][] = [
      ["/api/v1/webhooks/twilio?a=1&b=%20x", { Body: "héllo 👋", MediaUrl0: "https://x.test/a?b=c&d=e" }],
      ["/api/v1/webhooks/twilio", { Body: "", Extra: "a+b=c&d" }],
    ];
    for (const [path, extra] of cases) {
      const fields = { ...inboundForm(), ...extra };
      const { res } = await postSignedBy(`https://msg.example.com${path}`, path, "https://msg.example.com", fields);
      expect(res.status, path).toBe(200);
    }
  });

  it("refuses what twilio-node refuses: another token, another URL, a changed parameter", async () => {
    const fields = inboundForm();
    const url = "https://msg.example.com/api/v1/webhooks/twilio";
    const forged = [
      getExpectedTwilioSignature("another-token", url, fields),
      getExpectedTwilioSignature(TOKEN, "https://evil.example.com/api/v1/webhooks/twilio", fields),
      getExpectedTwilioSignature(TOKEN, url, { ...fields, Body: "changed" }),
    ];
    for (const signature of forged) {
      expect(validateRequest(TOKEN, signature, url, fields)).toBe(false);
      const res = await postTwilio("/api/v1/webhooks/twilio", new URLSearchParams(fields).toString(), { contentType: FORM, signature }, { TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_BASE_URL: "https://msg.example.com" });
      expect(res.status).toBe(403);
    }
    expect(await messagesWithProviderId(fields.MessageSid!)).toHaveLength(0);
  });
});

describe("SendGrid signatures, judged by @sendgrid/eventwebhook", () => {
  it("a DER signature (as SendGrid sends it) that the library verifies is accepted; one it rejects is refused", async () => {
    const keys = await sendgridKeys();
    const overrides = { SENDGRID_WEBHOOK_PUBLIC_KEY: keys.publicKey };
    const email = await sentMessage("email");
    const body = JSON.stringify([{ event: "delivered", sg_event_id: uniqueId("oracle-"), sg_message_id: `${email.providerMessageId}.f`, message_id: email.id, timestamp: 1736937000 }]);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const der = bytesToBase64(rawToDer(base64ToBytes(await keys.sign(timestamp, body))));
    const verifier = new EventWebhook();
    const key = verifier.convertPublicKeyToECDSA(keys.publicKey);
    const headers = (signature: string) => ({ "x-twilio-email-event-webhook-signature": signature, "x-twilio-email-event-webhook-timestamp": timestamp });

    const tampered = body.replace("oracle-", "oracle-X");
    expect(verifier.verifySignature(key, tampered, der, timestamp)).toBe(false);
    expect((await postJson("/api/v1/webhooks/sendgrid", tampered, headers(der), overrides)).status).toBe(403);

    expect(verifier.verifySignature(key, body, der, timestamp)).toBe(true);
    expect((await postJson("/api/v1/webhooks/sendgrid", body, headers(der), overrides)).status).toBe(200);
    expect((await messageOf(email.id)).status).toBe("delivered");
  });
});

function base64ToBytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
