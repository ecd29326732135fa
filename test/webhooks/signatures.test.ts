// Proves the signature checks (§9.4, §9.8) against Twilio's published vectors and fresh P-256 keys: exact bytes verify; one changed byte, a missing header, another URL, a re-encoded query or a re-serialised body do not.
import { describe, expect, it } from "vitest";
import {
  derToRaw,
  rawPathAndQuery,
  sha256Hex,
  twilioSignature,
  twilioSignatureString,
  twilioSignedUrls,
  verifySendgrid,
  verifyTwilio,
} from "../../src/webhooks/signatures";
import { bytesToBase64 } from "../../src/webhooks/signatures";
import { rawToDer, sendgridKeys } from "../helpers/webhooks";

const encode = (text: string) => new TextEncoder().encode(text);

const VECTOR_BODY =
  "MessageSid=SM00000000000000000000000000000001&From=%2B15559876543&To=%2B15551234567&Body=Hello+there&NumMedia=0";
const VECTOR_JSON =
  '{"messaging_provider_id":"test_123","from":"+15551234567","to":"+15559876543","type":"sms","body":"Hi","timestamp":"2024-01-01T12:00:00Z"}';

describe("Twilio X-Twilio-Signature (§9.4)", () => {
  it("reproduces Twilio's documented example (token 12345, myapp.php)", async () => {
    const data = twilioSignatureString("https://mycompany.com/myapp.php?foo=1&bar=2", [
      ["CallSid", "CA1234567890ABCDE"],
      ["Caller", "+14158675310"],
      ["Digits", "1234"],
      ["From", "+14158675310"],
      ["To", "+18005551212"],
    ]);
    expect(await twilioSignature("12345", data)).toBe("GvWf1cFY/Q7PnoempGyD5oXAezc=");
  });

  it("verifies the contract's form vector and rejects one changed byte, a missing header, another URL", async () => {
    const request = { url: "http://service.test/api/v1/webhooks/twilio", signature: "a6rFsHSOVPAZ0AkYXfU51vl0psU=", bodyKind: "form" as const, body: encode(VECTOR_BODY) };
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", request)).toBe(true);
    // the same with a trailing slash on PUBLIC_BASE_URL, which is not part of the signed URL
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com/", request)).toBe(true);

    const changed = encode(VECTOR_BODY.replace("Hello+there", "Hello+therf"));
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, body: changed })).toBe(false);
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, signature: undefined })).toBe(false);
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, signature: "a6rFsHSOVPAZ0AkYXfU51vl0psV=" })).toBe(false);
    expect(await verifyTwilio("test-auth-token", "https://other.example.com", request)).toBe(false);
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, url: "http://service.test/api/webhooks/sms" })).toBe(false);
    expect(await verifyTwilio("wrong-token", "https://msg.example.com", request)).toBe(false);
  });

  it("signs the query exactly as received: a re-encoded or re-ordered query fails", async () => {
    const base = "https://msg.example.com";
    const received = "http://service.test/api/v1/webhooks/twilio?message_id=abc&note=a%2Fb";
    const signature = await twilioSignature("tok", twilioSignatureString(`${base}/api/v1/webhooks/twilio?message_id=abc&note=a%2Fb`, [["MessageSid", "SM1"]]));
    const body = encode("MessageSid=SM1");
    const verify = (url: string) => verifyTwilio("tok", base, { url, signature, bodyKind: "form", body });
    expect(await verify(received)).toBe(true);
    expect(await verify("http://service.test/api/v1/webhooks/twilio?message_id=abc&note=a/b")).toBe(false);
    expect(await verify("http://service.test/api/v1/webhooks/twilio?note=a%2Fb&message_id=abc")).toBe(false);
    expect(await verify("http://service.test/api/v1/webhooks/twilio?message_id=abc&note=a%2fb")).toBe(false);
    expect(await verify("http://service.test/api/v1/webhooks/twilio/?message_id=abc&note=a%2Fb")).toBe(false);
  });

  it("verifies the contract's JSON vector through bodySHA256, and only with the exact body", async () => {
    const digest = await sha256Hex(encode(VECTOR_JSON));
    expect(digest).toBe("25617420d44c1020bde281697f4d11390ecb210dd13374d848e5cfff73427ddf");
    const url = `http://service.test/api/v1/webhooks/twilio?bodySHA256=${digest}`;
    const request = { url, signature: "QCfNi/Zbaw0UgKFxsiR/RPTaQMQ=", bodyKind: "json" as const, body: encode(VECTOR_JSON) };
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", request)).toBe(true);
    const reserialised = encode(JSON.stringify(JSON.parse(VECTOR_JSON), null, 1));
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, body: reserialised })).toBe(false);
    expect(await verifyTwilio("test-auth-token", "https://msg.example.com", { ...request, url: "http://service.test/api/v1/webhooks/twilio" })).toBe(false);
  });

  it("sorts names by code unit and appends each distinct value of a repeated name, sorted", () => {
    expect(twilioSignatureString("u", [["b", "2"], ["B", "1"], ["a", "z"], ["a", "y"], ["a", "z"]])).toBe("uB1ayazb2");
  });

  it("accepts the default port when PUBLIC_BASE_URL names none, and uses the request origin when unset", async () => {
    expect(twilioSignedUrls("http://x/p?q=1", "https://msg.example.com")).toEqual(["https://msg.example.com/p?q=1", "https://msg.example.com:443/p?q=1"]);
    expect(twilioSignedUrls("http://x/p?q=%27", "https://msg.example.com:443")).toEqual(["https://msg.example.com:443/p?q=%27", "https://msg.example.com:443/p?q='", "https://msg.example.com/p?q=%27", "https://msg.example.com/p?q='"]);
    expect(twilioSignedUrls("http://x/p", "https://msg.example.com:8443")).toEqual(["https://msg.example.com:8443/p"]);
    expect(twilioSignedUrls("http://service.test/p?a=%20", undefined)[0]).toBe("http://service.test/p?a=%20");
    const withPort = await twilioSignature("tok", twilioSignatureString("https://msg.example.com:443/p", [["A", "1"]]));
    expect(await verifyTwilio("tok", "https://msg.example.com", { url: "http://x/p", signature: withPort, bodyKind: "form", body: encode("A=1") })).toBe(true);
  });

  it("slices path and query from the raw URL without normalising them", () => {
    expect(rawPathAndQuery("https://h:1/a/%7e/b?x=%7E&y#frag")).toEqual({ origin: "https://h:1", path: "/a/%7e/b", query: "x=%7E&y" });
    expect(rawPathAndQuery("https://h")).toEqual({ origin: "https://h", path: "/", query: null });
  });
});

describe("SendGrid ECDSA P-256 (§9.8)", () => {
  const body = '[{"email":"a@example.com","event":"delivered","sg_event_id":"x1","sg_message_id":"m.filter","timestamp":1736937000}]';
  const timestamp = "1736937001";

  it("verifies a generated key's signature over timestamp ‖ exact body, raw r‖s and DER alike", async () => {
    const keys = await sendgridKeys();
    const raw = await keys.sign(timestamp, body);
    expect(await verifySendgrid(keys.publicKey, { signature: raw, timestamp, body: encode(body) })).toBe(true);
    const der = bytesToBase64(rawToDer(Uint8Array.from(atob(raw), (c) => c.charCodeAt(0))));
    expect(await verifySendgrid(keys.publicKey, { signature: der, timestamp, body: encode(body) })).toBe(true);
    const pem = `-----BEGIN PUBLIC KEY-----\n${keys.publicKey.match(/.{1,64}/g)!.join("\n")}\n-----END PUBLIC KEY-----\n`;
    expect(await verifySendgrid(pem, { signature: der, timestamp, body: encode(body) })).toBe(true);
  });

  it("fails for a re-serialised body, one flipped byte, another timestamp, missing headers or garbage", async () => {
    const keys = await sendgridKeys();
    const signature = await keys.sign(timestamp, body);
    const reserialised = JSON.stringify(JSON.parse(body), null, 2);
    expect(reserialised).not.toBe(body);
    expect(await verifySendgrid(keys.publicKey, { signature, timestamp, body: encode(reserialised) })).toBe(false);
    const flipped = encode(body);
    flipped[10] = flipped[10]! ^ 0x01;
    expect(await verifySendgrid(keys.publicKey, { signature, timestamp, body: flipped })).toBe(false);
    expect(await verifySendgrid(keys.publicKey, { signature, timestamp: "1736937002", body: encode(body) })).toBe(false);
    expect(await verifySendgrid(keys.publicKey, { signature: undefined, timestamp, body: encode(body) })).toBe(false);
    expect(await verifySendgrid(keys.publicKey, { signature, timestamp: undefined, body: encode(body) })).toBe(false);
    expect(await verifySendgrid(keys.publicKey, { signature: "%%%not base64%%%", timestamp, body: encode(body) })).toBe(false);
    expect(await verifySendgrid(keys.publicKey, { signature: btoa("short"), timestamp, body: encode(body) })).toBe(false);
    const other = await sendgridKeys();
    expect(await verifySendgrid(other.publicKey, { signature, timestamp, body: encode(body) })).toBe(false);
  });

  it("converts DER to r‖s: leading zero bytes stripped, short integers left-padded to 32 bytes", () => {
    const r = new Uint8Array(32).fill(0x81); // high bit set: DER adds a 0x00 byte
    const s = new Uint8Array(32);
    s.set([0x01, 0x02], 30); // a short integer: DER stores 2 bytes
    const raw = new Uint8Array([...r, ...s]);
    const der = rawToDer(raw);
    expect(der[3]).toBe(33);
    expect(derToRaw(der)).toEqual(raw);
    expect(derToRaw(der.subarray(0, der.length - 1))).toBeNull();
    expect(derToRaw(new Uint8Array(64))).toBeNull();
  });
});
