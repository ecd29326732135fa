// What the routes answer (docs/api.md), as zod schemas for the document. They describe the
// services' representations (src/services/representation.ts); test/openapi.test.ts parses real
// answers with them, so a change on either side that the other does not follow fails there.
import { z } from "@hono/zod-openapi";
import { CONVERSATION_STATUSES, CONVERSATION_TYPES, MESSAGE_STATUSES, MESSAGE_TYPES } from "../db/schema";

const MESSAGE_ID = "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f";
const CONVERSATION_ID = "0190a5c2-7b1d-7a11-8e2f-5c6d7e8f9a0b";
const AT = "2025-01-15T10:30:00.123Z";

const Id = z.guid().openapi({ example: MESSAGE_ID });
const Timestamp = z.iso.datetime().openapi({ example: AT });
const Count = z.int().min(0);
const JsonObject = z.record(z.string(), z.unknown());

export const MESSAGE_EXAMPLE = {
  id: MESSAGE_ID,
  conversation_id: CONVERSATION_ID,
  parent_id: null,
  provider: "twilio",
  provider_message_id: null,
  direction: "outbound",
  status: "pending",
  type: "sms",
  from: "+15551234567",
  to: "+15559876543",
  body: "Your code is 123456",
  attachments: [],
  send_at: null,
  sent_at: null,
  delivered_at: null,
  created_at: AT,
  updated_at: AT,
  metadata: {},
  attempts: 0,
  error: null,
  segments: 1,
  subject: null,
  html: null,
  from_name: null,
  reply_to: null,
  cc: [],
  bcc: [],
} as const;

export const Message = z
  .object({
    id: Id,
    conversation_id: Id,
    parent_id: Id.nullable(),
    provider: z.enum(["twilio", "sendgrid"]),
    provider_message_id: z.string().nullable(),
    direction: z.enum(["outbound", "inbound"]),
    status: z.enum(MESSAGE_STATUSES),
    type: z.enum(MESSAGE_TYPES),
    from: z.string(),
    to: z.string(),
    body: z.string().nullable(),
    attachments: z.array(z.string()),
    send_at: Timestamp.nullable().openapi({
      description: "When a scheduled send was asked to go out (status `scheduled` until then); null for an immediate send.",
    }),
    sent_at: Timestamp.nullable(),
    delivered_at: Timestamp.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
    metadata: JsonObject,
    attempts: Count.openapi({ description: "Provider attempts so far." }),
    error: z
      .object({ code: z.string(), message: z.string() })
      .nullable()
      .openapi({ description: "The last provider error, while the message is retry, failed or undelivered." }),
    segments: Count.nullable().openapi({ description: "SMS segments of the body; null for MMS and email." }),
    // Email only (null and [] for SMS/MMS): see SendEmailRequest.
    subject: z.string().nullable().openapi({ description: "Email: the subject (`metadata.subject` for messages sent without one)." }),
    html: z.string().nullable().openapi({ description: "Email: the HTML part; `body` is then the plain-text part." }),
    from_name: z.string().nullable().openapi({ description: "Email: the sender's display name; `from` is the address." }),
    reply_to: z.string().nullable(),
    cc: z.array(z.string()),
    bcc: z.array(z.string()),
  })
  .openapi("Message", { example: MESSAGE_EXAMPLE });

export const CONVERSATION_EXAMPLE = {
  id: CONVERSATION_ID,
  participant_from: "+15551234567",
  participant_to: "+15559876543",
  channel_type: "sms",
  type: "direct",
  status: "active",
  title: null,
  last_message_at: AT,
  message_count: 1,
  unread_count: 0,
  created_at: AT,
  updated_at: AT,
  metadata: {},
  messages: null,
} as const;

export const Conversation = z
  .object({
    id: Id,
    participant_from: z.string(),
    participant_to: z.string(),
    channel_type: z.enum(MESSAGE_TYPES),
    type: z.enum(CONVERSATION_TYPES),
    status: z.enum(CONVERSATION_STATUSES),
    title: z.string().nullable(),
    last_message_at: Timestamp.nullable(),
    message_count: Count,
    unread_count: Count,
    created_at: Timestamp,
    updated_at: Timestamp,
    metadata: JsonObject,
    messages: z.array(Message).nullable().openapi({ description: "With include_messages=true, the messages oldest first; else null." }),
  })
  .openapi("Conversation", { example: CONVERSATION_EXAMPLE });

const page = { total: Count.openapi({ description: "Rows matching the filters, whatever the page." }), limit: Count, offset: Count };

export const MessageList = z
  .object({
    messages: z.array(Message),
    total: Count.openapi({ description: "Messages matching the filters, whatever the page, counted up to 10,000 (see `total_capped`)." }),
    total_capped: z.boolean().openapi({ description: "`true` when more than 10,000 messages match: `total` is then 10,000, not the count." }),
    limit: Count,
    offset: Count,
  })
  .openapi("MessageList", { example: { messages: [MESSAGE_EXAMPLE], total: 1, total_capped: false, limit: 50, offset: 0 } });

export const ConversationList = z
  .object({ conversations: z.array(Conversation), ...page })
  .openapi("ConversationList", { example: { conversations: [CONVERSATION_EXAMPLE], total: 1, limit: 50, offset: 0 } });

const EVENT_EXAMPLE = { id: "0190a5c2-7b1f-7000-8000-000000000001", type: "created", created_at: AT, data: { source: "api" } };

export const EventList = z
  .object({
    message_id: Id,
    events: z.array(
      z.object({ id: Id, type: z.string().openapi({ example: "created" }), created_at: Timestamp, data: JsonObject }).openapi("MessageEvent", { example: EVENT_EXAMPLE }),
    ),
    ...page,
  })
  .openapi("MessageEventList", { example: { message_id: MESSAGE_ID, events: [EVENT_EXAMPLE], total: 1, limit: 100, offset: 0 } });

// ---------------------------------------------------------------------------------------------
// Queue

export const CircuitView = z
  .object({
    state: z.enum(["closed", "open", "half_open"]),
    reason: z.enum(["credentials", "outage", "throttled"]).nullable(),
    since: Timestamp.nullable().openapi({ description: "When it opened." }),
    next_probe_at: Timestamp.nullable(),
    last_error: z.string().nullable().openapi({ description: "The provider's last provider-wide error, e.g. `20003: Authenticate`." }),
    shards: z.array(z.string()).openapi({ description: "The shards this is the worst of." }),
  })
  .openapi("CircuitView", {
    description:
      "A provider's circuit breaker as its worst shard sees it. While open, that shard reads nothing: messages wait in their queue without spending attempts, and one message probes the provider at growing intervals.",
  });

const QueueTypeStats = z.object({
  stream: z.string().openapi({ example: "message_queue:sms" }),
  stream_length: Count,
  pending: Count.openapi({ description: "Entries delivered to a worker and not yet acknowledged." }),
  retry_scheduled: Count,
  dead_letters: Count,
  held: Count.openapi({ description: "Messages an ambiguous attempt left unattributable, waiting for a status callback or an operator (status `held`)." }),
  oldest_pending_age_seconds: z.number().min(0).nullable(),
  worker_heartbeat_age_seconds: z.number().min(0).nullable(),
  circuit: CircuitView.nullable(),
  processed_total: Count,
  failed_total: Count,
});

const QUEUE_TYPE_EXAMPLE = {
  stream: "message_queue:sms",
  stream_length: 12,
  pending: 0,
  retry_scheduled: 1,
  dead_letters: 0,
  held: 0,
  oldest_pending_age_seconds: null,
  worker_heartbeat_age_seconds: 2.4,
  circuit: { state: "closed", reason: null, since: null, next_probe_at: null, last_error: null, shards: ["sms:0"] },
  processed_total: 1042,
  failed_total: 3,
};

export const QueueStats = z
  .object({
    generated_at: Timestamp,
    queues: z.object({ sms: QueueTypeStats, mms: QueueTypeStats, email: QueueTypeStats }),
    processing_mode: z.enum(["sync", "async"]),
    shards_per_type: z.int().min(1),
    sweep_heartbeat_age_seconds: z.number().min(0).nullable().openapi({ description: "Seconds since the cron sweep last ran; null if never." }),
  })
  .openapi("QueueStats", {
    example: {
      generated_at: AT,
      queues: { sms: QUEUE_TYPE_EXAMPLE, mms: { ...QUEUE_TYPE_EXAMPLE, stream: "message_queue:mms" }, email: { ...QUEUE_TYPE_EXAMPLE, stream: "message_queue:email" } },
      processing_mode: "async",
      shards_per_type: 1,
      sweep_heartbeat_age_seconds: 31.2,
    },
  });

const DEAD_LETTER_EXAMPLE = {
  message_id: MESSAGE_ID,
  conversation_id: CONVERSATION_ID,
  type: "sms",
  attempts: 1,
  error_class: "permanent",
  error: { code: "21211", message: "Invalid 'To' Phone Number" },
  dead_lettered_at: AT,
};

export const DeadLetterList = z
  .object({
    dead_letters: z.array(
      z
        .object({
          message_id: Id,
          conversation_id: Id,
          type: z.enum(MESSAGE_TYPES),
          attempts: Count,
          error_class: z.string().openapi({ example: "permanent" }),
          error: z.object({ code: z.string(), message: z.string() }),
          dead_lettered_at: Timestamp,
        })
        .openapi("DeadLetter", { example: DEAD_LETTER_EXAMPLE }),
    ),
    ...page,
  })
  .openapi("DeadLetterList", { example: { dead_letters: [DEAD_LETTER_EXAMPLE], total: 1, limit: 50, offset: 0 } });

// ---------------------------------------------------------------------------------------------
// Legacy shapes (docs/api.md)

export const LegacySendResult = z
  .object({ status: z.literal("success"), message_id: Id, conversation_id: Id, type: z.enum(MESSAGE_TYPES), provider: z.enum(["twilio", "sendgrid"]) })
  .openapi("LegacySendResult", { example: { status: "success", message_id: MESSAGE_ID, conversation_id: CONVERSATION_ID, type: "sms", provider: "twilio" } });

const { messages: _messages, title: _title, type: _type, updated_at: _updated, metadata: _metadata, ...legacyConversationShape } = Conversation.shape;
const { messages: _m, title: _t, type: _k, updated_at: _u, metadata: _md, ...LEGACY_CONVERSATION_EXAMPLE } = CONVERSATION_EXAMPLE;

export const LegacyConversationList = z
  .object({ conversations: z.array(z.object(legacyConversationShape).openapi("LegacyConversation", { example: LEGACY_CONVERSATION_EXAMPLE })), ...page })
  .openapi("LegacyConversationList", { example: { conversations: [LEGACY_CONVERSATION_EXAMPLE], total: 1, limit: 50, offset: 0 } });

const LegacyMessage = Message.pick({ id: true, conversation_id: true, direction: true, type: true, from: true, to: true, body: true, status: true, provider: true, created_at: true, sent_at: true });
const LEGACY_MESSAGE_EXAMPLE = Object.fromEntries(Object.keys(LegacyMessage.shape).map((key) => [key, MESSAGE_EXAMPLE[key as keyof typeof MESSAGE_EXAMPLE]]));

export const LegacyMessageList = z
  .object({
    messages: z.array(LegacyMessage.openapi("LegacyMessage", { example: LEGACY_MESSAGE_EXAMPLE })),
    total: Count,
    conversation_id: z.string().openapi({ description: "The id as given; an unknown or malformed id is an empty list." }),
    limit: Count,
    offset: Count,
  })
  .openapi("LegacyMessageList", { example: { messages: [LEGACY_MESSAGE_EXAMPLE], total: 1, conversation_id: CONVERSATION_ID, limit: 50, offset: 0 } });

// ---------------------------------------------------------------------------------------------
// Webhooks

export const WebhookSummary = z
  .object({
    status: z.literal("ok"),
    result: z.object({
      status: z.enum(["success", "duplicate", "ignored"]),
      kind: z.enum(["inbound_message", "status_callback", "events"]),
      message_id: Id.nullable().optional(),
      conversation_id: Id.nullable().optional(),
      reason: z.string().optional().openapi({ description: "Why a status callback changed nothing (`unmatched`, `out_of_order`, ...)." }),
      received: Count.optional(),
      applied: Count.optional(),
      duplicates: Count.optional(),
      unmatched: Count.optional(),
      skipped: Count.optional(),
    }),
  })
  .openapi("WebhookSummary", {
    example: { status: "ok", result: { status: "success", kind: "inbound_message", message_id: MESSAGE_ID, conversation_id: CONVERSATION_ID } },
  });

export const WebhookStatus = z
  .object({
    provider: z.enum(["twilio", "sendgrid", "internal", "mock"]),
    status: z.enum(["configured", "not_configured"]),
    signature_verification: z.enum(["enabled", "disabled"]),
    statistics: z.object({
      total_webhooks_24h: Count,
      processed_webhooks_24h: Count,
      error_webhooks_24h: Count,
      last_webhook_at: Timestamp.nullable(),
    }),
  })
  .openapi("WebhookStatus", {
    example: {
      provider: "twilio",
      status: "configured",
      signature_verification: "enabled",
      statistics: { total_webhooks_24h: 120, processed_webhooks_24h: 118, error_webhooks_24h: 2, last_webhook_at: AT },
    },
  });

export const LegacyWebhookResult = z
  .object({ status: z.literal("success"), message: z.literal("Webhook processed") })
  .openapi("LegacyWebhookResult", { example: { status: "success", message: "Webhook processed" } });

// ---------------------------------------------------------------------------------------------
// Probes (docs/api.md)

const DependencyCheck = z
  .object({ status: z.enum(["healthy", "unhealthy"]), latency_ms: z.number().min(0) })
  .openapi("DependencyCheck", { example: { status: "healthy", latency_ms: 1.42 } });

const RedisCheck = DependencyCheck.extend({
  sweep_heartbeat_age_seconds: z.number().min(0).nullable().optional().openapi({ description: "Seconds since the cron sweep last ran (absent when Redis is down)." }),
}).openapi("RedisCheck", { example: { status: "healthy", latency_ms: 0.87, sweep_heartbeat_age_seconds: 31.2 } });

const ProviderCheck = z.object({
  status: z.enum(["ok", "not_configured", "paused"]).openapi({
    description: "ok: can send; not_configured: live without credentials (sends of its types are refused, not ready); paused: its circuit is open (sends still accepted and queued).",
  }),
  mode: z.enum(["live", "simulator"]),
  missing: z.array(z.string()).openapi({ description: "Settings a live provider lacks." }),
  circuit: CircuitView.nullable(),
});

const ReadinessChecks = z.object({
  database: DependencyCheck,
  redis: RedisCheck,
  providers: z.object({ twilio: ProviderCheck, sendgrid: ProviderCheck }),
  configuration: z.object({
    status: z.enum(["healthy", "degraded"]),
    problems: z.array(z.string()).openapi({ description: "Missing or unsafe production settings (always empty in development)." }),
  }),
});

const CHECKS_EXAMPLE = {
  database: { status: "healthy", latency_ms: 1.42 },
  redis: { status: "healthy", latency_ms: 0.87, sweep_heartbeat_age_seconds: 31.2 },
  providers: {
    twilio: { status: "ok", mode: "live", missing: [], circuit: null },
    sendgrid: { status: "ok", mode: "live", missing: [], circuit: null },
  },
  configuration: { status: "healthy", problems: [] },
};

export const Readiness = z
  .object({ ready: z.literal(true), timestamp: Timestamp, checks: ReadinessChecks })
  .openapi("Readiness", { example: { ready: true, timestamp: AT, checks: CHECKS_EXAMPLE } });

export const NOT_READY_EXAMPLE = { ready: false, timestamp: AT, checks: { ...CHECKS_EXAMPLE, redis: { status: "unhealthy", latency_ms: 3001.2 } } };

/** The `details` of /ready's 503. */
export const NotReady = z
  .object({ ready: z.literal(false), timestamp: Timestamp, checks: ReadinessChecks })
  .openapi("NotReady", { example: NOT_READY_EXAMPLE });

export const Health = z
  .object({
    status: z.literal("healthy").openapi({ description: "The Worker runs. It touches no dependency: /ready checks them." }),
    timestamp: Timestamp,
  })
  .openapi("Health", { example: { status: "healthy", timestamp: AT } });

export const ServiceInfo = z
  .object({ name: z.string(), version: z.string(), status: z.literal("operational"), documentation: z.string() })
  .openapi("ServiceInfo", { example: { name: "Messaging Service", version: "1.0.0", status: "operational", documentation: "/docs" } });

export const Liveness = z.object({ status: z.literal("alive"), timestamp: Timestamp }).openapi("Liveness", { example: { status: "alive", timestamp: AT } });

export const Startup = z
  .object({
    started: z.literal(true),
    timestamp: Timestamp,
    initialization: z.object({ database_initialized: z.boolean(), redis_initialized: z.boolean(), providers_initialized: z.boolean() }),
  })
  .openapi("Startup", {
    example: { started: true, timestamp: AT, initialization: { database_initialized: true, redis_initialized: true, providers_initialized: true } },
  });

const ProviderDependency = z.object({
  status: z.enum(["ok", "not_configured", "paused"]),
  latency_ms: z.number().min(0),
  type: z.enum(["sms", "email"]),
  mode: z.enum(["live", "simulator"]),
});

export const Dependencies = z
  .object({
    timestamp: Timestamp,
    dependencies: z.object({ postgresql: DependencyCheck, redis: RedisCheck, provider_twilio: ProviderDependency, provider_sendgrid: ProviderDependency }),
  })
  .openapi("Dependencies", {
    example: {
      timestamp: AT,
      dependencies: {
        postgresql: CHECKS_EXAMPLE.database,
        redis: CHECKS_EXAMPLE.redis,
        provider_twilio: { status: "ok", latency_ms: 0, type: "sms", mode: "live" },
        provider_sendgrid: { status: "ok", latency_ms: 0, type: "email", mode: "live" },
      },
    },
  });
