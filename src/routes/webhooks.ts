// Webhook routes (docs/api.md): thin handlers over the intake pipeline; each route
// differs only in how it answers a delivery that was processed (or recognised as a duplicate).
//
// The intake checks a delivery's signature over its raw bytes before anything parses it, so the
// request bodies below are documented by reference to their schemas: a body given as a zod schema
// would make the route validate (and so read and parse) it first.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { badRequest } from "../errors";
import type { AppContext, AppEnv } from "../http/context";
import { defineRoute, type ErrorDoc } from "../openapi";
import { STATUS_PROVIDERS, webhookStatus } from "../services/webhook-deliveries";
import { intakeSendgrid, intakeTwilio, INTAKES } from "../webhooks/intake";
import { LegacyWebhookResult, WebhookStatus, WebhookSummary } from "./schemas";

const WEBHOOK_PROVIDERS = ["twilio", "sendgrid"] as const;

// ---------------------------------------------------------------------------------------------
// What providers post (documentation only; src/webhooks/parsers.ts reads them)

const text = (description: string, example?: string) => z.string().optional().openapi({ description, example });

const TwilioForm = z
  .looseObject({
    MessageSid: z.string().openapi({ description: "Twilio's message SID: the dedupe key.", example: "SM0123456789abcdef0123456789abcdef" }),
    From: text("Inbound: the sender.", "+15559876543"),
    To: text("Inbound: our number.", "+15551234567"),
    Body: text("Inbound: the text.", "Hi"),
    NumMedia: text("Inbound: how many MediaUrl{n} follow (an MMS when above 0).", "0"),
    MediaUrl0: text("Inbound: the first media URL (MediaUrl1, ... likewise)."),
    MediaContentType0: text("Inbound: the first media's content type."),
    MessageStatus: text("Status callback: queued, sending, sent, delivered, undelivered, failed, read, canceled (`received` means inbound).", "delivered"),
    SmsStatus: text("Status callback: the older name of MessageStatus."),
    ErrorCode: text("Status callback: Twilio's error code.", "30003"),
    ErrorMessage: text("Status callback: its text."),
  })
  .openapi("TwilioWebhookForm", { description: "An inbound message or a status callback, form-encoded as Twilio posts them." });

const TestMessage = (idKey: "messaging_provider_id" | "xillio_id", phone: boolean) =>
  z.object({
    [idKey]: z.union([z.string(), z.number()]).optional().openapi({ description: "The dedupe key; absent, one is derived from the body's SHA-256." }),
    from: z.string().openapi({ example: phone ? "+15559876543" : "Ann <ann@example.com>" }),
    to: z.string().openapi({ example: phone ? "+15551234567" : "inbox@example.com" }),
    ...(phone ? { type: z.enum(["sms", "mms"]).nullish().openapi({ description: "Absent: mms when there are attachments, else sms." }) } : {}),
    body: z.string().nullish(),
    attachments: z.array(z.string()).nullish(),
    timestamp: z.string().optional().openapi({ description: "Kept in the message's metadata." }),
  });

const TwilioJson = TestMessage("messaging_provider_id", true).openapi("TwilioTestMessage", {
  description: "An inbound message in the JSON test format.",
  example: { messaging_provider_id: "message-1", from: "+18045551234", to: "+12016661234", type: "sms", body: "Hi", attachments: null, timestamp: "2024-11-01T14:00:00Z" },
});

const SendgridEvent = z
  .looseObject({
    event: z.string().openapi({ description: "processed, deferred, delivered, bounce, dropped, open, click, ...", example: "delivered" }),
    sg_event_id: z.string().openapi({ description: "The dedupe key of the event." }),
    sg_message_id: z.string().optional(),
    message_id: z.string().optional().openapi({ description: "Our message id, sent to SendGrid as a custom argument." }),
    timestamp: z.int().optional(),
  })
  .openapi("SendgridEvent");

const SendgridJson = z
  .union([
    z.array(SendgridEvent).openapi({ description: "An Event Webhook batch." }),
    TestMessage("xillio_id", false).openapi("SendgridTestMessage", { description: "An inbound email in the JSON test format." }),
  ])
  .openapi("SendgridWebhookJson");

const InboundParse = z
  .looseObject({
    from: z.string().openapi({ example: "Ann <ann@example.com>" }),
    to: z.string().openapi({ example: "inbox@example.com" }),
    subject: z.string().optional(),
    text: z.string().optional(),
    html: z.string().optional(),
    headers: z.string().optional().openapi({ description: "The raw header block; its Message-ID is the dedupe key." }),
    attachments: z.string().optional().openapi({ description: "How many attachment parts follow (the files are not stored)." }),
  })
  .openapi("SendgridInboundParse", { description: "An inbound email as SendGrid's Inbound Parse posts it (multipart/form-data)." });

const PAYLOADS = { TwilioWebhookForm: TwilioForm, TwilioTestMessage: TwilioJson, SendgridWebhookJson: SendgridJson, SendgridInboundParse: InboundParse };
const payload = (name: keyof typeof PAYLOADS) => ({ schema: { $ref: `#/components/schemas/${name}` } });

const TWILIO_BODY = {
  "application/x-www-form-urlencoded": {
    ...payload("TwilioWebhookForm"),
    example: { MessageSid: "SM0123456789abcdef0123456789abcdef", From: "+15559876543", To: "+15551234567", Body: "Hi", NumMedia: "0" },
  },
  "application/json": {
    ...payload("TwilioTestMessage"),
    example: { messaging_provider_id: "message-1", from: "+18045551234", to: "+12016661234", type: "sms", body: "Hi", attachments: null, timestamp: "2024-11-01T14:00:00Z" },
  },
};

const SENDGRID_BODY = {
  "application/json": {
    ...payload("SendgridWebhookJson"),
    examples: {
      events: { summary: "Event Webhook batch", value: [{ event: "delivered", sg_event_id: "ZGVsaXZlcmVk", message_id: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f", timestamp: 1736937000 }] },
      test: { summary: "JSON test format", value: { xillio_id: "message-3", from: "a@example.com", to: "b@example.com", body: "<p>Hi</p>", timestamp: "2024-11-01T14:00:00Z" } },
    },
  },
  "multipart/form-data": {
    ...payload("SendgridInboundParse"),
    example: { from: "Ann <ann@example.com>", to: "inbox@example.com", subject: "Hi", text: "Hello" },
  },
};

const TwilioHeaders = z.object({
  "X-Twilio-Signature": z.string().optional().openapi({ description: "See the twilioSignature security scheme.", example: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" }),
});
const SendgridHeaders = z.object({
  "X-Twilio-Email-Event-Webhook-Signature": z.string().optional().openapi({ description: "See the sendgridSignature security scheme." }),
  "X-Twilio-Email-Event-Webhook-Timestamp": z.string().optional().openapi({ description: "See the sendgridTimestamp security scheme.", example: "1736937000" }),
});

const TWILIO_SECURITY = [{ twilioSignature: [] }];
const SENDGRID_SECURITY = [{ sendgridSignature: [], sendgridTimestamp: [] }];

const WEBHOOK_ERRORS: Record<400 | 403, ErrorDoc> = {
  400: {
    description: "The body does not parse as the provider's format; `details` names the fields.",
    example: { error: "bad_request", message: "Field required", details: [{ path: "body.From", message: "Field required" }] },
  },
  403: {
    description: "The signature is missing or wrong (or, outside development, its secret is not configured).",
    example: { error: "forbidden", message: "Invalid webhook signature" },
  },
};

const UNKNOWN_PROVIDER = (names: readonly string[]): ErrorDoc => ({
  description: `The provider is not one of ${names.join(", ")}.`,
  example: { error: "bad_request", message: "Unknown provider: custom" },
});

const json = (description: string, schema: z.ZodType) => ({ 200: { description, content: { "application/json": { schema } } } });

const TwilioRoute = defineRoute({
  method: "post",
  path: "/api/v1/webhooks/twilio",
  operationId: "twilioWebhook",
  summary: "Twilio inbound messages and status callbacks",
  description: "Point the number's messaging webhook and the StatusCallback here. Deliveries are deduplicated: a repeat changes nothing and is answered alike.",
  tags: ["webhooks"],
  security: TWILIO_SECURITY,
  request: { headers: TwilioHeaders, body: { required: true, content: TWILIO_BODY } },
  responses: {
    200: { description: "Processed or a duplicate: an empty TwiML answer (no reply message).", content: { "application/xml": { schema: z.string(), example: "<Response></Response>" } } },
  },
  errors: WEBHOOK_ERRORS,
});

const SendgridRoute = defineRoute({
  method: "post",
  path: "/api/v1/webhooks/sendgrid",
  operationId: "sendgridWebhook",
  summary: "SendGrid Event Webhook and Inbound Parse",
  tags: ["webhooks"],
  security: SENDGRID_SECURITY,
  request: { headers: SendgridHeaders, body: { required: true, content: SENDGRID_BODY } },
  responses: json("Processed or a duplicate.", z.object({ status: z.literal("ok") }).openapi({ example: { status: "ok" } })),
  errors: WEBHOOK_ERRORS,
});

const GenericRoute = defineRoute({
  method: "post",
  path: "/api/v1/webhooks/generic/{provider}",
  operationId: "genericWebhook",
  summary: "Either provider's webhook, answered with a summary of what it did",
  tags: ["webhooks"],
  security: [...TWILIO_SECURITY, ...SENDGRID_SECURITY],
  request: {
    params: z.object({ provider: z.enum(WEBHOOK_PROVIDERS).openapi({ example: "twilio" }) }),
    headers: TwilioHeaders.extend(SendgridHeaders.shape),
    body: {
      required: true,
      content: {
        ...TWILIO_BODY,
        ...SENDGRID_BODY,
        "application/json": {
          // the path, not the body, says which provider it is
          schema: { anyOf: [payload("TwilioTestMessage").schema, payload("SendgridWebhookJson").schema] },
          examples: { twilio: { summary: "provider twilio", value: TWILIO_BODY["application/json"].example }, ...SENDGRID_BODY["application/json"].examples },
        },
      },
    },
  },
  responses: json("Processed, a duplicate, or ignored.", WebhookSummary),
  errors: { ...WEBHOOK_ERRORS, 400: { ...WEBHOOK_ERRORS[400], description: `${UNKNOWN_PROVIDER(WEBHOOK_PROVIDERS).description} Or: ${WEBHOOK_ERRORS[400].description}` } },
});

const StatusRoute = defineRoute({
  method: "get",
  path: "/api/v1/webhooks/status/{provider}",
  scope: "ops",
  operationId: "getWebhookStatus",
  summary: "A provider's webhook configuration and 24-hour delivery statistics",
  tags: ["webhooks"],
  request: { params: z.object({ provider: z.enum(STATUS_PROVIDERS).openapi({ example: "twilio" }) }) },
  responses: json("Deliveries that passed the signature check, counted by outcome.", WebhookStatus),
  errors: { 400: UNKNOWN_PROVIDER(STATUS_PROVIDERS) },
});

const LegacySmsRoute = defineRoute({
  method: "post",
  path: "/api/webhooks/sms",
  operationId: "legacyTwilioWebhook",
  summary: "Legacy: Twilio webhook",
  tags: ["legacy"],
  security: TWILIO_SECURITY,
  request: { headers: TwilioHeaders, body: { required: true, content: TWILIO_BODY } },
  responses: json("Processed or a duplicate.", LegacyWebhookResult),
  errors: WEBHOOK_ERRORS,
});

const LegacyEmailRoute = defineRoute({
  method: "post",
  path: "/api/webhooks/email",
  operationId: "legacySendgridWebhook",
  summary: "Legacy: SendGrid webhook",
  tags: ["legacy"],
  security: SENDGRID_SECURITY,
  request: { headers: SendgridHeaders, body: { required: true, content: SENDGRID_BODY } },
  responses: json("Processed or a duplicate.", LegacyWebhookResult),
  errors: WEBHOOK_ERRORS,
});

/** An unknown provider in the path is a 400 (docs/api.md), not a validation error. */
const unknownProvider = (result: { success: boolean }, c: AppContext): undefined => {
  if (!result.success) throw badRequest(`Unknown provider: ${c.req.param("provider")}`);
  return undefined;
};

/** Twilio expects TwiML; an empty <Response> sends no reply message. */
const twimlOk = (c: AppContext) => c.body("<Response></Response>", 200, { "Content-Type": "application/xml" });

const legacyOk = (c: AppContext) => c.json({ status: "success", message: "Webhook processed" } as const, 200);

export function registerWebhookRoutes(app: OpenAPIHono<AppEnv>) {
  for (const [name, schema] of Object.entries(PAYLOADS)) app.openAPIRegistry.register(name, schema);

  app.openapi(TwilioRoute, async (c) => {
    await intakeTwilio(c);
    return twimlOk(c);
  });

  app.openapi(SendgridRoute, async (c) => {
    await intakeSendgrid(c);
    return c.json({ status: "ok" } as const, 200);
  });

  app.openapi(
    GenericRoute,
    async (c) => {
      const intake = INTAKES.get(c.req.valid("param").provider)!;
      return c.json({ status: "ok", result: await intake(c) }, 200);
    },
    unknownProvider,
  );

  app.openapi(StatusRoute, async (c) => c.json(await webhookStatus(c.get("deps"), c.get("config"), c.req.valid("param").provider), 200), unknownProvider);

  app.openapi(LegacySmsRoute, async (c) => {
    await intakeTwilio(c);
    return legacyOk(c);
  });

  app.openapi(LegacyEmailRoute, async (c) => {
    await intakeSendgrid(c);
    return legacyOk(c);
  });
}
