// Requests of the webhook endpoint and webhook event routes. Whether a URL may receive webhooks
// depends on the environment (src/validation/webhook-url.ts), so the schemas check its form and the
// service its destination.
import { z } from "@hono/zod-openapi";
import { WEBHOOK_EVENT_TYPES } from "../db/schema";
import { OBJECT_BODY } from "./messages";
import { oneOf, pageQuery, querySchema, uuidValue } from "./common";
import { WEBHOOK_URL_MAX_LENGTH } from "./webhook-url";

const URL_MESSAGE = "url must be an absolute http(s) URL";
const EVENTS_MESSAGE = `events must be a list of: ${WEBHOOK_EVENT_TYPES.join(", ")}`;

export const WebhookUrl = z
  .string({ error: (issue) => (issue.input === undefined ? "Field required" : URL_MESSAGE) })
  .max(WEBHOOK_URL_MAX_LENGTH, `url must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`)
  .refine((v) => URL.canParse(v) && ["http:", "https:"].includes(new URL(v).protocol), URL_MESSAGE)
  .openapi({
    format: "uri",
    description: "Where to POST. Outside development: https to a public host name (no localhost, no private or link-local IP literal).",
    example: "https://example.com/hooks/messages",
  });

const Events = z
  .array(z.enum(WEBHOOK_EVENT_TYPES, { error: EVENTS_MESSAGE }), { error: EVENTS_MESSAGE })
  .max(WEBHOOK_EVENT_TYPES.length * 2, EVENTS_MESSAGE)
  .openapi({ description: "The event types to receive; absent, null or empty: every type.", example: ["message.delivered", "message.failed"] });

const Description = z
  .string({ error: "description must be a string" })
  .max(500, "description must be at most 500 characters")
  .openapi({ description: "For people; at most 500 characters.", example: "Order service" });

export const CreateEndpointBody = z
  .object({ url: WebhookUrl, events: Events.nullish(), description: Description.nullish() }, { error: OBJECT_BODY })
  .openapi("WebhookEndpointCreate", { example: { url: "https://example.com/hooks/messages", events: ["message.delivered", "message.failed"] } });

export const PatchEndpointBody = z
  .object(
    {
      url: WebhookUrl.optional(),
      events: Events.nullish(),
      description: Description.nullish(),
      enabled: z
        .boolean({ error: "enabled must be true or false" })
        .optional()
        .openapi({ description: "true re-enables a disabled endpoint (its failing streak starts afresh); false disables it." }),
    },
    { error: OBJECT_BODY },
  )
  .openapi("WebhookEndpointPatch", { example: { enabled: true } });

export const EndpointIdParams = z.object({ endpoint_id: uuidValue() });
export const WebhookEventIdParams = z.object({ event_id: uuidValue() });

export const EndpointListQuery = querySchema(pageQuery(100, 50));

export const WebhookEventListQuery = querySchema({
  message_id: uuidValue().optional(),
  endpoint_id: uuidValue().optional(),
  status: oneOf("status", ["pending", "delivered", "failed"]).optional(),
  type: oneOf("type", WEBHOOK_EVENT_TYPES).optional(),
  ...pageQuery(100, 50),
});

// ---------------------------------------------------------------------------------------------
// Answers

const AT = "2025-01-15T10:30:00.123Z";
const Timestamp = z.iso.datetime().openapi({ example: AT });
const Id = z.guid().openapi({ example: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e60" });

const endpointFields = {
  id: Id,
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  enabled: z.boolean().openapi({ description: "false once disabled: by the API, or after failing without a success for WEBHOOK_DISABLE_AFTER_SECONDS." }),
  disabled_at: Timestamp.nullable(),
  disabled_reason: z.string().nullable(),
  failing_since: Timestamp.nullable().openapi({ description: "The first failed attempt since the last success, if failing." }),
  created_at: Timestamp,
  updated_at: Timestamp,
};

export const ENDPOINT_EXAMPLE = {
  id: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e60",
  url: "https://example.com/hooks/messages",
  description: null,
  events: ["message.delivered", "message.failed"],
  enabled: true,
  disabled_at: null,
  disabled_reason: null,
  failing_since: null,
  created_at: AT,
  updated_at: AT,
};

export const WebhookEndpoint = z.object(endpointFields).openapi("WebhookEndpoint", { example: ENDPOINT_EXAMPLE });

export const WebhookEndpointWithSecret = z
  .object({
    ...endpointFields,
    secret: z.string().openapi({
      description: "`whsec_` + base64 of 32 random bytes: the Standard Webhooks signing secret. Shown only here; keep it.",
      example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }),
  })
  .openapi("WebhookEndpointWithSecret", { example: { ...ENDPOINT_EXAMPLE, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwKb6LKKcqdfc=" } });

export const WebhookEndpointList = z
  .object({ endpoints: z.array(WebhookEndpoint), total: z.int().min(0), limit: z.int(), offset: z.int() })
  .openapi("WebhookEndpointList", { example: { endpoints: [ENDPOINT_EXAMPLE], total: 1, limit: 50, offset: 0 } });

const EVENT_EXAMPLE = {
  id: "5f0c6a2e-9b7d-4c1e-8f3a-2d4b6c8e0a12",
  type: "message.delivered",
  message_id: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f",
  endpoint_id: ENDPOINT_EXAMPLE.id,
  url: ENDPOINT_EXAMPLE.url,
  sequence: 42,
  status: "delivered",
  attempts: 2,
  next_attempt_at: null,
  last_attempt_at: AT,
  last_status_code: 200,
  last_error: null,
  last_response: '{"ok":true}',
  delivered_at: AT,
  created_at: AT,
};

export const WebhookEvent = z
  .object({
    id: Id.openapi({ description: "The `webhook-id` header of every attempt of this event." }),
    type: z.enum(WEBHOOK_EVENT_TYPES),
    message_id: Id,
    endpoint_id: Id.nullable().openapi({ description: "null: the message's status_callback." }),
    url: z.string().nullable(),
    sequence: z.int().openapi({ description: "`data.sequence` of the body: grows with each event of a message." }),
    status: z.enum(["pending", "delivered", "failed"]).openapi({ description: "`failed`: given up after the retry schedule." }),
    attempts: z.int().min(0),
    next_attempt_at: Timestamp.nullable(),
    last_attempt_at: Timestamp.nullable(),
    last_status_code: z.int().nullable(),
    last_error: z.string().nullable(),
    last_response: z.string().nullable().openapi({ description: "The first 256 bytes of the last answer, at most." }),
    delivered_at: Timestamp.nullable(),
    created_at: Timestamp,
  })
  .openapi("WebhookEvent", { example: EVENT_EXAMPLE });

export const WebhookEventList = z
  .object({ events: z.array(WebhookEvent), total: z.int().min(0), limit: z.int(), offset: z.int() })
  .openapi("WebhookEventList", { example: { events: [EVENT_EXAMPLE], total: 1, limit: 50, offset: 0 } });
