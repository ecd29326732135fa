// Proves, with fast-check, that no input crashes the send validation, the webhook parsers or the
// signature verifiers: each input gets a 4xx AppError in the envelope's shape or a valid result,
// never another exception (which would be a 500). 2,000 cases per target.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors";
import { validateSend } from "../../src/validation/messages";
import { validateCreateConversation, validateSearch } from "../../src/validation/conversations";
import { parseInboundParse, parseSendgridJson, parseTwilioForm, parseTwilioJson } from "../../src/webhooks/parsers";
import { verifySendgrid, verifyTwilio } from "../../src/webhooks/signatures";

const RUNS = { numRuns: 2000 };
const encode = (text: string) => new TextEncoder().encode(text);

/** The outcome must be a value or a 4xx AppError whose details, if any, are {path, message} pairs. */
async function acceptedOrRejected(work: () => unknown): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(500);
    expect(typeof error.message).toBe("string");
    if (Array.isArray(error.details)) {
      for (const d of error.details) expect(d).toEqual({ path: expect.any(String), message: expect.any(String) });
    }
  }
}

/** Values of every JSON type and a few nasty strings: huge, unicode edges, injection attempts. */
const nastyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.constantFrom("", " ", "\u0000", "\ud800", "+", "00", "+1 (555) 987-6543", "a@b", "a@b.c", "x".repeat(5000), "\r\nSet-Cookie: x=1", "%", "_", "\\", "😀".repeat(100)),
);
const anyJson = fc.oneof(nastyString, fc.jsonValue({ maxDepth: 4 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));

const sendBody = fc.record(
  {
    type: fc.oneof(fc.constantFrom("sms", "mms", "email", "SMS", "voice"), anyJson),
    to: fc.oneof(fc.constantFrom("+15559876543", "5559876543", "r@example.com", "not-a-number"), anyJson),
    from: fc.oneof(fc.constantFrom("+15551234567", "sender@example.com"), anyJson),
    body: fc.oneof(nastyString, anyJson),
    attachments: fc.oneof(fc.array(fc.oneof(fc.webUrl(), nastyString), { maxLength: 12 }), anyJson),
    metadata: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), anyJson),
    parent_id: fc.oneof(fc.uuid(), anyJson),
    conversation_type: fc.oneof(fc.constantFrom("direct", "thread"), anyJson),
  },
  { requiredKeys: [] },
);

describe("fuzz: request validation", () => {
  it("send bodies: a normalised SendInput or a 422 with details", async () => {
    await fc.assert(
      fc.asyncProperty(sendBody, async (body) => {
        await acceptedOrRejected(() => {
          const input = validateSend(body as Record<string, unknown>, "US");
          expect(["sms", "mms", "email"]).toContain(input.type);
          expect(input.attachments.length).toBeLessThanOrEqual(10);
        });
      }),
      RUNS,
    );
  });

  it("conversation bodies and search bodies", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("type", "participant_from", "participant_to", "channel_type", "title", "metadata", "query", "limit", "offset"), anyJson), async (body) => {
        await acceptedOrRejected(() => validateCreateConversation(body, "US"));
        await acceptedOrRejected(() => validateSearch(body));
      }),
      RUNS,
    );
  });
});

const formField = fc.tuple(
  fc.constantFrom("MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0", "MessageStatus", "SmsStatus", "ErrorCode", "x"),
  nastyString,
);

describe("fuzz: webhook parsers", () => {
  it("Twilio form bodies, arbitrary and field-shaped", async () => {
    // Mostly valid deliveries with fields changed, emptied, dropped or added, so that the parser
    // gets past its required-field checks; plus arbitrary bytes.
    const base: Record<string, string> = { MessageSid: "SM0123456789abcdef0123456789abcdef", From: "+15559876543", To: "+15551234567", Body: "hi" };
    const form = fc
      .tuple(fc.array(formField, { maxLength: 8 }), fc.subarray(Object.keys(base)))
      .map(([changes, dropped]) => {
        const fields = new Map(Object.entries(base));
        for (const key of dropped) fields.delete(key);
        for (const [key, value] of changes) fields.set(key, value);
        return encode(new URLSearchParams([...fields]).toString());
      });
    await fc.assert(
      fc.asyncProperty(fc.oneof(form, fc.uint8Array({ maxLength: 512 })), fc.option(fc.oneof(fc.uuid(), nastyString)), async (bytes, messageId) => {
        await acceptedOrRejected(() => parseTwilioForm(bytes, messageId, "US"));
      }),
      RUNS,
    );
  });

  it("Twilio JSON test format and SendGrid JSON bodies", async () => {
    const validTest = { messaging_provider_id: "test_1", from: "+15551234567", to: "+15559876543", type: "sms", body: "Hello", attachments: null };
    const json = fc.oneof(
      fc.record({ messaging_provider_id: anyJson, from: anyJson, to: anyJson, type: anyJson, body: anyJson, attachments: anyJson }, { requiredKeys: [] }).map((changes) => ({ ...validTest, ...changes })),
      fc.record({ messaging_provider_id: anyJson, from: anyJson, to: anyJson, type: anyJson, body: anyJson, attachments: anyJson }, { requiredKeys: [] }),
      fc.array(fc.record({ event: anyJson, sg_event_id: anyJson, sg_message_id: anyJson, message_id: anyJson, timestamp: anyJson }, { requiredKeys: [] })),
      anyJson,
    );
    const bytes = fc.oneof(json.map((v) => encode(JSON.stringify(v) ?? "null")), fc.uint8Array({ maxLength: 512 }), fc.constant(encode("[".repeat(5000))));
    await fc.assert(
      fc.asyncProperty(bytes, async (b) => {
        await acceptedOrRejected(() => parseTwilioJson(b, "US"));
        await acceptedOrRejected(() => parseSendgridJson(b));
      }),
      RUNS,
    );
  });

  it("SendGrid Inbound Parse multipart bodies", async () => {
    const part = fc.tuple(fc.constantFrom("from", "to", "subject", "text", "html", "attachments", "headers", "x"), nastyString);
    const base: [string, string][] = [["from", "Ann <ann@example.com>"], ["to", "inbox@example.com"], ["subject", "Hi"], ["text", "Hello"]];
    const multipart = fc.tuple(fc.array(part, { maxLength: 8 }), fc.boolean(), fc.boolean()).map(([changes, keepBase, truncate]) => {
      const parts = keepBase ? [...base, ...changes] : changes;
      const boundary = "fuzzBoundary";
      let text = parts.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join("") + `--${boundary}--\r\n`;
      if (truncate) text = text.slice(0, Math.floor(text.length / 2));
      return { bytes: encode(text), type: `multipart/form-data; boundary=${boundary}` };
    });
    const garbage = fc.tuple(fc.uint8Array({ maxLength: 512 }), fc.constantFrom("multipart/form-data", "multipart/form-data; boundary=x", "multipart/form-data; boundary=")).map(([bytes, type]) => ({ bytes, type }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(multipart, garbage), async ({ bytes, type }) => {
        await acceptedOrRejected(() => parseInboundParse(bytes, type));
      }),
      RUNS,
    );
  });
});

describe("fuzz: signature verifiers", () => {
  it("Twilio: arbitrary signatures, URLs and bodies verify false, never throw", async () => {
    await fc.assert(
      fc.asyncProperty(nastyString, fc.webUrl({ withQueryParameters: true }), fc.uint8Array({ maxLength: 256 }), fc.constantFrom("form", "json"), async (signature, url, body, bodyKind) => {
        expect(await verifyTwilio("token", "https://msg.example.com", { url, signature, bodyKind: bodyKind as "form" | "json", body })).toBe(false);
      }),
      RUNS,
    );
  });

  it("SendGrid: arbitrary signatures and timestamps verify false, never throw", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
    const key = btoa(String.fromCharCode(...spki));
    await fc.assert(
      fc.asyncProperty(nastyString, nastyString, fc.uint8Array({ maxLength: 256 }), async (signature, timestamp, body) => {
        expect(await verifySendgrid(key, { signature, timestamp, body })).toBe(false);
      }),
      RUNS,
    );
  });
});

describe("fuzz: the send route end to end", () => {
  it("arbitrary bodies and headers answer 201 or a 4xx envelope, and a rejected request stores nothing", async () => {
    const { call } = await import("../helpers/http");
    const { sql } = await import("../helpers/db");
    const count = async () => (await sql<{ n: number }>("select count(*)::int as n from messages"))[0]!.n;
    const bodies = fc.oneof(sendBody.map((b) => JSON.stringify(b)), nastyString, fc.constant("{not json"), fc.constant("[]"));
    const contentTypes = fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/vnd.x+json");
    const keys = fc.option(fc.oneof(nastyString, fc.uuid()), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, keys, async (body, contentType, key) => {
        const before = await count();
        const headers: Record<string, string> = { "content-type": contentType };
        if (key !== undefined && /^[\x20-\x7e]*$/.test(key)) headers["idempotency-key"] = key;
        const res = await call("/api/v1/messages/send", { method: "POST", headers, body });
        expect(res.status).toBeLessThan(500);
        const answer = await res.json<any>();
        if (res.status === 201) return;
        expect(Object.keys(answer).sort()).toEqual(["details", "error", "message"]);
        expect(await count()).toBe(before);
      }),
      { numRuns: 200 },
    );
  });
});
