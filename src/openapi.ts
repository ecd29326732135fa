// The OpenAPI 3.1 document (/openapi.json) and the interactive reference (/docs). The request
// schemas state the same field rules that src/validation enforces; a test checks that every
// route of the app is documented.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { CONVERSATION_STATUSES, MESSAGE_STATUSES, MESSAGE_TYPES } from "./db/schema";
import type { AppEnv } from "./http/context";
import { policyFor } from "./http/policy";
import { EMAIL_BODY_MAX_BYTES, MAX_ATTACHMENTS, SMS_BODY_MAX_CHARS } from "./validation/messages";

const Uuid = z.uuid().openapi({ example: "0b6f3c1e-8d2a-4c55-9f0e-3a1b2c3d4e5f" });
const Timestamp = z.string().openapi({ example: "2025-01-15T10:30:00.123Z", format: "date-time" });
const Metadata = z.record(z.string(), z.unknown()).openapi({ description: "JSON object, at most 8192 bytes compact" });

const ErrorEnvelope = z
  .object({ error: z.string(), message: z.string(), details: z.unknown().nullable() })
  .openapi("Error");

const MessageError = z.object({ code: z.string(), message: z.string() });

const Message = z
  .object({
    id: Uuid,
    conversation_id: Uuid,
    parent_id: Uuid.nullable(),
    provider: z.enum(["twilio", "sendgrid"]),
    provider_message_id: z.string().nullable(),
    direction: z.enum(["outbound", "inbound"]),
    status: z.enum(MESSAGE_STATUSES),
    type: z.enum(MESSAGE_TYPES),
    from: z.string(),
    to: z.string(),
    body: z.string().nullable(),
    attachments: z.array(z.string()),
    sent_at: Timestamp.nullable(),
    delivered_at: Timestamp.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    metadata: Metadata,
    attempts: z.int(),
    error: MessageError.nullable(),
    segments: z.int().nullable(),
  })
  .openapi("Message");

const SendMessageRequest = z
  .object({
    type: z.enum(MESSAGE_TYPES),
    to: z.string().openapi({ description: "E.164-normalisable phone number (sms/mms) or email address" }),
    from: z.string(),
    body: z.string().nullable().optional().openapi({ description: `sms/mms ≤${SMS_BODY_MAX_CHARS} characters; email ≤${EMAIL_BODY_MAX_BYTES} UTF-8 bytes` }),
    attachments: z.array(z.url({ protocol: /^https?$/ }).max(2048)).max(MAX_ATTACHMENTS).nullable().optional(),
    metadata: Metadata.nullable().optional(),
    parent_id: Uuid.nullable().optional(),
    conversation_type: z.enum(["direct", "thread"]).nullable().optional(),
  })
  .openapi("SendMessageRequest");

const LegacySendRequest = z
  .object({
    from: z.string(),
    to: z.string(),
    type: z.string().optional(),
    body: z.string().nullable().optional(),
    attachments: z.array(z.string()).nullable().optional(),
    timestamp: z.string().optional(),
  })
  .openapi("LegacySendRequest");

const LegacySendResult = z
  .object({ status: z.literal("success"), message_id: Uuid, conversation_id: Uuid, type: z.enum(MESSAGE_TYPES), provider: z.string() })
  .openapi("LegacySendResult");

const Conversation = z
  .object({
    id: Uuid,
    participant_from: z.string(),
    participant_to: z.string(),
    channel_type: z.enum(MESSAGE_TYPES),
    type: z.enum(["direct", "thread"]),
    status: z.enum(CONVERSATION_STATUSES),
    title: z.string().nullable(),
    last_message_at: Timestamp.nullable(),
    message_count: z.int(),
    unread_count: z.int(),
    created_at: Timestamp,
    updated_at: Timestamp,
    metadata: Metadata,
    messages: z.array(Message).nullable(),
  })
  .openapi("Conversation");

const Event = z.object({ id: Uuid, type: z.string(), created_at: Timestamp, data: z.record(z.string(), z.unknown()) }).openapi("MessageEvent");

const list = <T extends z.ZodType>(key: string, item: T) =>
  z.object({ [key]: z.array(item), total: z.int(), limit: z.int(), offset: z.int() });

const page = (max: number) => ({
  limit: z.int().min(1).max(max).optional(),
  offset: z.int().min(0).optional(),
});

type Doc = {
  method: "get" | "post" | "patch" | "delete";
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodObject;
  status?: number;
  response?: z.ZodType;
  contentType?: string;
  /** request media types, when not only application/json */
  bodyTypes?: string[];
};

const messageId = z.object({ message_id: Uuid });
const conversationId = z.object({ conversation_id: Uuid });
const webhookBody = z.unknown().openapi({ description: "Provider payload: form-encoded, JSON or multipart (see API contract §9)" });
const TWILIO_BODY_TYPES = ["application/x-www-form-urlencoded", "application/json"];
const SENDGRID_BODY_TYPES = ["application/json", "multipart/form-data"];
const WebhookSummary = z
  .object({
    status: z.literal("ok"),
    result: z.object({
      status: z.enum(["success", "duplicate", "ignored"]),
      kind: z.enum(["inbound_message", "status_callback", "events"]),
      message_id: Uuid.nullable().optional(),
      conversation_id: Uuid.nullable().optional(),
      received: z.int().optional(),
      applied: z.int().optional(),
      duplicates: z.int().optional(),
      unmatched: z.int().optional(),
      skipped: z.int().optional(),
    }),
  })
  .openapi("WebhookSummary");
const WebhookStatus = z
  .object({
    provider: z.enum(["twilio", "sendgrid", "internal", "mock"]),
    status: z.enum(["configured", "not_configured"]),
    signature_verification: z.enum(["enabled", "disabled"]),
    statistics: z.object({
      total_webhooks_24h: z.int(),
      processed_webhooks_24h: z.int(),
      error_webhooks_24h: z.int(),
      last_webhook_at: Timestamp.nullable(),
    }),
  })
  .openapi("WebhookStatus");
const LegacyWebhookResult = z.object({ status: z.literal("success"), message: z.string() }).openapi("LegacyWebhookResult");

const DOCS: Doc[] = [
  { method: "get", path: "/", summary: "Service description", tag: "ops", response: z.object({ name: z.string(), version: z.string(), status: z.string(), documentation: z.string() }) },
  { method: "get", path: "/health", summary: "Health of the dependencies (always 200)", tag: "ops" },
  { method: "get", path: "/ready", summary: "Readiness: 503 when Postgres or Redis is down", tag: "ops" },
  { method: "get", path: "/live", summary: "Liveness", tag: "ops" },
  { method: "get", path: "/startup", summary: "Startup probe", tag: "ops" },
  { method: "get", path: "/dependencies", summary: "Dependency status and latency", tag: "ops" },
  { method: "get", path: "/metrics", summary: "Prometheus metrics", tag: "ops", contentType: "text/plain" },
  { method: "post", path: "/api/v1/messages/send", summary: "Send an SMS, MMS or email", tag: "messages", body: SendMessageRequest, status: 201, response: Message },
  { method: "get", path: "/api/v1/messages", summary: "List messages", tag: "messages", query: z.object({ conversation_id: Uuid.optional(), parent_id: Uuid.optional(), status: z.enum(MESSAGE_STATUSES).optional(), direction: z.enum(["outbound", "inbound"]).optional(), type: z.enum(MESSAGE_TYPES).optional(), ...page(100) }), response: list("messages", Message) },
  { method: "get", path: "/api/v1/messages/{message_id}", summary: "Get a message", tag: "messages", response: Message },
  { method: "get", path: "/api/v1/messages/{message_id}/events", summary: "A message's timeline", tag: "messages", query: z.object(page(500)), response: list("events", Event).extend({ message_id: Uuid }) },
  { method: "patch", path: "/api/v1/messages/{message_id}/status", summary: "Move a message's status forward", tag: "messages", body: z.object({ status: z.enum(MESSAGE_STATUSES), metadata: Metadata.optional() }), response: Message },
  { method: "post", path: "/api/v1/messages/{message_id}/retry", summary: "Retry a failed message", tag: "messages", response: Message },
  { method: "post", path: "/api/v1/conversations", summary: "Create (or find) a conversation", tag: "conversations", body: z.object({ type: z.enum(["direct", "thread"]).optional(), participant_from: z.string(), participant_to: z.string(), channel_type: z.enum(MESSAGE_TYPES).optional(), title: z.string().max(255).nullable().optional(), metadata: Metadata.optional() }), status: 201, response: Conversation },
  { method: "get", path: "/api/v1/conversations", summary: "List conversations", tag: "conversations", query: z.object({ participant: z.string().optional(), channel_type: z.enum(MESSAGE_TYPES).optional(), status: z.enum(CONVERSATION_STATUSES).optional(), type: z.enum(["direct", "thread"]).optional(), ...page(100) }), response: list("conversations", Conversation) },
  { method: "post", path: "/api/v1/conversations/search", summary: "Search conversations", tag: "conversations", body: z.object({ query: z.string().min(1).max(200), limit: z.int().min(1).max(50).optional(), offset: z.int().min(0).optional() }), response: list("conversations", Conversation) },
  { method: "get", path: "/api/v1/conversations/{conversation_id}", summary: "Get a conversation", tag: "conversations", query: z.object({ include_messages: z.enum(["true", "false"]).optional() }), response: Conversation },
  { method: "patch", path: "/api/v1/conversations/{conversation_id}", summary: "Update title, status or metadata", tag: "conversations", body: z.object({ title: z.string().max(255).nullable().optional(), status: z.enum(CONVERSATION_STATUSES).optional(), metadata: Metadata.optional() }), response: Conversation },
  { method: "delete", path: "/api/v1/conversations/{conversation_id}", summary: "Close (or hard-delete) a conversation", tag: "conversations", query: z.object({ hard_delete: z.enum(["true", "false"]).optional() }), status: 204 },
  { method: "post", path: "/api/v1/conversations/{conversation_id}/read", summary: "Mark inbound messages read", tag: "conversations", response: Conversation },
  { method: "get", path: "/api/v1/queue/stats", summary: "Queue depth, pending entries, retries, dead letters and worker health per type", tag: "queue" },
  { method: "get", path: "/api/v1/queue/dead-letters", summary: "List dead letters", tag: "queue", query: z.object({ type: z.enum(MESSAGE_TYPES).optional(), ...page(100) }) },
  { method: "post", path: "/api/v1/queue/dead-letters/{message_id}/redrive", summary: "Send a dead-lettered message again", tag: "queue", response: Message },
  { method: "post", path: "/api/messages/sms", summary: "Legacy: send an SMS or MMS", tag: "legacy", body: LegacySendRequest, status: 200, response: LegacySendResult },
  { method: "post", path: "/api/messages/email", summary: "Legacy: send an email", tag: "legacy", body: LegacySendRequest, status: 200, response: LegacySendResult },
  { method: "get", path: "/api/conversations", summary: "Legacy: list conversations", tag: "legacy", query: z.object({ participant: z.string().optional(), ...page(100) }) },
  { method: "get", path: "/api/conversations/{id}/messages", summary: "Legacy: a conversation's messages", tag: "legacy", query: z.object(page(100)) },
  { method: "post", path: "/api/v1/webhooks/twilio", summary: "Twilio inbound messages and status callbacks", tag: "webhooks", body: webhookBody, bodyTypes: TWILIO_BODY_TYPES, contentType: "application/xml" },
  { method: "post", path: "/api/v1/webhooks/sendgrid", summary: "SendGrid Event Webhook and Inbound Parse", tag: "webhooks", body: webhookBody, bodyTypes: SENDGRID_BODY_TYPES, response: z.object({ status: z.literal("ok") }) },
  { method: "post", path: "/api/v1/webhooks/generic/{provider}", summary: "Any provider's webhook (twilio or sendgrid) with a JSON summary of what it did", tag: "webhooks", body: webhookBody, bodyTypes: [...TWILIO_BODY_TYPES, "multipart/form-data"], response: WebhookSummary },
  { method: "get", path: "/api/v1/webhooks/status/{provider}", summary: "Webhook configuration and 24-hour delivery statistics of a provider", tag: "webhooks", response: WebhookStatus },
  { method: "post", path: "/api/webhooks/sms", summary: "Legacy: Twilio webhook", tag: "legacy", body: webhookBody, bodyTypes: TWILIO_BODY_TYPES, response: LegacyWebhookResult },
  { method: "post", path: "/api/webhooks/email", summary: "Legacy: SendGrid webhook", tag: "legacy", body: webhookBody, bodyTypes: SENDGRID_BODY_TYPES, response: LegacyWebhookResult },
];

function pathParams(path: string) {
  if (path.includes("{provider}")) return z.object({ provider: z.string().openapi({ example: "twilio" }) });
  if (path.includes("{message_id}")) return messageId;
  if (path.includes("{conversation_id}")) return conversationId;
  if (path.includes("{id}")) return z.object({ id: z.string() });
  return undefined;
}

export function registerOpenApi(app: OpenAPIHono<AppEnv>) {
  const registry = app.openAPIRegistry;
  const bearer = registry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer" });
  for (const doc of DOCS) {
    const status = doc.status ?? 200;
    const errors = Object.fromEntries(
      [400, 401, ...(policyFor(doc.method, doc.path).webhook ? [403] : []), 404, 409, 413, 415, 422, 429, 500, 503].map((code) => [
        code,
        { description: "Error envelope", content: { "application/json": { schema: ErrorEnvelope } } },
      ]),
    );
    registry.registerPath({
      method: doc.method,
      path: doc.path,
      summary: doc.summary,
      tags: [doc.tag],
      security: policyFor(doc.method, doc.path).auth ? [{ [bearer.name]: [] }] : undefined,
      request: {
        params: pathParams(doc.path),
        query: doc.query,
        body: doc.body
          ? { content: Object.fromEntries((doc.bodyTypes ?? ["application/json"]).map((type) => [type, { schema: doc.body! }])), required: true }
          : undefined,
      },
      responses: {
        [status]: {
          description: "Success",
          content: status === 204 ? undefined : { [doc.contentType ?? "application/json"]: { schema: doc.response ?? z.unknown() } },
        },
        ...errors,
      },
    });
  }

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "Messaging Service", version: "1.0.0", description: "Send SMS, MMS and email; receive provider webhooks; conversations." },
  });

  app.get("/docs", (c) =>
    c.html(`<!doctype html>
<html><head><meta charset="utf-8"><title>Messaging Service API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
<noscript><a href="/openapi.json">OpenAPI document</a></noscript></body></html>`),
  );
}

/** For tests: every documented (method, path). */
export const DOCUMENTED_ROUTES = DOCS.map((d) => `${d.method.toUpperCase()} ${d.path}`);
