// The record. Postgres is the truth (docs/architecture.md); constraints do the integrity work so that
// concurrent requests cannot create a second direct conversation, a second copy of a provider
// message, or a status outside the lifecycle.
import { sql } from "drizzle-orm";
import { type AnyPgColumn, bigint, boolean, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 6 });

export const MESSAGE_TYPES = ["sms", "mms", "email"] as const;
// `scheduled`: waiting for its send_at (outbound only); `canceled`: final, never sent.
export const MESSAGE_STATUSES = ["pending", "queued", "sending", "sent", "delivered", "undelivered", "failed", "retry", "held", "scheduled", "canceled"] as const;
export const CONVERSATION_STATUSES = ["active", "archived", "closed"] as const;
export const CONVERSATION_TYPES = ["direct", "thread"] as const;
export const EVENT_TYPES = [
  "created",
  "received",
  "enqueued",
  "enqueue_failed",
  "attempt",
  "retry_scheduled",
  "status_changed",
  "callback_received",
  "retry_requested",
  "redriven",
  "dead_lettered",
  "scheduled",
  "canceled",
  "webhook_attempt",
  /** an inbound media item copied into R2, or a try that failed (issue 15 */
  "media_fetch",
] as const;

const inList = (column: string, values: readonly string[]) =>
  sql.raw(`${column} in (${values.map((v) => `'${v}'`).join(", ")})`);

export const conversations = pgTable(
  "conversations",
  {
    id: uuid("id").primaryKey(),
    participantFrom: text("participant_from").notNull(),
    participantTo: text("participant_to").notNull(),
    channelType: text("channel_type").notNull(),
    type: text("type").notNull(),
    /** channel group + ordered participant pair; set only for direct conversations */
    directKey: text("direct_key"),
    status: text("status").notNull().default("active"),
    title: text("title"),
    lastMessageAt: ts("last_message_at"),
    messageCount: integer("message_count").notNull().default(0),
    unreadCount: integer("unread_count").notNull().default(0),
    metadata: jsonb("metadata").notNull().default({}),
    createdAt: ts("created_at").notNull().defaultNow(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("conversations_direct_key_uq").on(t.directKey).where(sql`${t.type} = 'direct'`),
    index("conversations_list_idx").on(sql`${t.lastMessageAt} desc nulls last`, sql`${t.createdAt} desc`, t.id),
    index("conversations_participant_from_idx").on(t.participantFrom),
    index("conversations_participant_to_idx").on(t.participantTo),
    check("conversations_channel_type_ck", inList("channel_type", MESSAGE_TYPES)),
    check("conversations_type_ck", inList("type", CONVERSATION_TYPES)),
    check("conversations_status_ck", inList("status", CONVERSATION_STATUSES)),
    check("conversations_direct_key_ck", sql`(type = 'direct') = (direct_key is not null)`),
    check("conversations_title_ck", sql`title is null or char_length(title) <= 255`),
    check("conversations_counts_ck", sql`message_count >= 0 and unread_count >= 0 and unread_count <= message_count`),
  ],
);

export const messages = pgTable(
  "messages",
  {
    id: uuid("id").primaryKey(),
    conversationId: uuid("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    parentId: uuid("parent_id").references((): AnyPgColumn => messages.id, { onDelete: "set null" }),
    provider: text("provider").notNull(),
    providerMessageId: text("provider_message_id"),
    direction: text("direction").notNull(),
    status: text("status").notNull(),
    type: text("type").notNull(),
    fromAddress: text("from_address").notNull(),
    toAddress: text("to_address").notNull(),
    body: text("body"),
    attachments: text("attachments").array().notNull().default(sql`'{}'::text[]`),
    metadata: jsonb("metadata").notNull().default({}),
    segments: integer("segments"),
    /** provider attempts that count toward QUEUE_MAX_ATTEMPTS; reset by a retry request or a redrive */
    attempts: integer("attempts").notNull().default(0),
    /**
     * Bumped by every claim and never reset: the fencing token of the outcome statement, so that a
     * worker whose claim was superseded (lease recovery, a retry request) cannot record over it.
     */
    claimSeq: integer("claim_seq").notNull().default(0),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    errorClass: text("error_class"),
    /** a scheduled status: when the worker may claim it (send_at); a retry: when it is due */
    nextAttemptAt: ts("next_attempt_at"),
    /** the client's send_at for a scheduled send, kept after it was sent; null for an immediate send */
    sendAt: ts("send_at"),
    /** the last attempt ended so that the provider may have accepted it (ask before resending) */
    ambiguousAttempt: boolean("ambiguous_attempt").notNull().default(false),
    /**
     * When each ambiguous request was in flight, [{attempt, started_at, ended_at}] by our clock:
     * reconcile attributes a provider message to this one only if it was created inside one of them.
     */
    ambiguousWindows: jsonb("ambiguous_windows").notNull().default([]),
    /** email only: {subject, html, from_name, reply_to, cc, bcc} (src/validation/email.ts); null for SMS/MMS */
    email: jsonb("email"),
    readAt: ts("read_at"),
    sentAt: ts("sent_at"),
    deliveredAt: ts("delivered_at"),
    createdAt: ts("created_at").notNull().defaultNow(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
    /** the send's `status_callback` URL: its status webhooks, signed with WEBHOOK_SIGNING_SECRET (migration 0006) */
    statusCallback: text("status_callback"),
  },
  (t) => [
    uniqueIndex("messages_provider_message_uq").on(t.provider, t.providerMessageId).where(sql`${t.providerMessageId} is not null`),
    index("messages_list_idx").on(sql`${t.createdAt} desc`, sql`${t.id} desc`),
    index("messages_conversation_idx").on(t.conversationId, sql`${t.createdAt} desc`, sql`${t.id} desc`),
    index("messages_parent_idx").on(t.parentId).where(sql`${t.parentId} is not null`),
    // GET /api/v1/messages?to=|from=: the console's search by recipient or sender, newest first.
    index("messages_to_idx").on(t.toAddress, sql`${t.createdAt} desc`, sql`${t.id} desc`),
    index("messages_from_idx").on(t.fromAddress, sql`${t.createdAt} desc`, sql`${t.id} desc`),
    // GET /api/v1/ops/failures reads the failures of a recent window only.
    index("messages_failed_idx").on(t.updatedAt).where(sql`status = 'failed'`),
    // The worker's claim and the sweep look only at messages still in flight.
    index("messages_in_flight_idx").on(t.status, t.updatedAt).where(sql`status in ('pending', 'queued', 'sending', 'retry')`),
    // The sweep's safety pass looks for scheduled messages whose time has passed.
    index("messages_scheduled_idx").on(t.nextAttemptAt).where(sql`status = 'scheduled'`),
    index("messages_unread_idx").on(t.conversationId).where(sql`direction = 'inbound' and read_at is null`),
    // Reconcile looks for our other unresolved ambiguous messages to the same recipient.
    index("messages_ambiguous_idx").on(t.toAddress).where(sql`ambiguous_attempt and provider_message_id is null`),
    check("messages_type_ck", inList("type", MESSAGE_TYPES)),
    check("messages_status_ck", inList("status", MESSAGE_STATUSES)),
    check("messages_direction_ck", inList("direction", ["outbound", "inbound"])),
    check("messages_provider_ck", inList("provider", ["twilio", "sendgrid"])),
    check("messages_attempts_ck", sql`attempts >= 0 and claim_seq >= 0`),
  ],
);

export const messageEvents = pgTable(
  "message_events",
  {
    id: uuid("id").primaryKey(),
    messageId: uuid("message_id")
      .notNull()
      .references(() => messages.id, { onDelete: "cascade" }),
    type: text("type").notNull(),
    data: jsonb("data").notNull().default({}),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("message_events_timeline_idx").on(t.messageId, t.createdAt, t.id),
    check("message_events_type_ck", inList("type", EVENT_TYPES)),
  ],
);

/** Webhook dedupe: written in the same transaction as the webhook's effect (docs/architecture.md). */
export const processedWebhookEvents = pgTable(
  "processed_webhook_events",
  {
    provider: text("provider").notNull(),
    eventKey: text("event_key").notNull(),
    kind: text("kind").notNull(),
    messageId: uuid("message_id"),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.eventKey] })],
);

export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    fingerprint: text("fingerprint").notNull(),
    /** the message the key's send stored, written in the same statement as the message */
    messageId: uuid("message_id"),
    /** the first answer, stored after it was sent for a byte-for-byte replay; null until then */
    responseStatus: integer("response_status"),
    responseBody: text("response_body"),
    createdAt: ts("created_at").notNull().defaultNow(),
    expiresAt: ts("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_keys_expires_idx").on(t.expiresAt)],
);

/**
 * One row per send statement that committed, written by that statement, keyed by the message id the
 * route generated. When a send's outcome is unknown (the connection was lost around the commit),
 * the route inserts the same key as abandoned: if that insert wins, the original statement can no
 * longer commit (its own insert would conflict) and "not stored" is the truth; if it conflicts, the
 * message was stored. The insert waits for an in-flight original, so the answer is never a guess.
 */
export const sendFences = pgTable("send_fences", {
  messageId: uuid("message_id").primaryKey(),
  abandoned: boolean("abandoned").notNull().default(false),
  createdAt: ts("created_at").notNull().defaultNow(),
});

export const deadLetters = pgTable(
  "dead_letters",
  {
    messageId: uuid("message_id")
      .primaryKey()
      .references(() => messages.id, { onDelete: "cascade" }),
    type: text("type").notNull(),
    attempts: integer("attempts").notNull(),
    errorClass: text("error_class").notNull(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    deadLetteredAt: ts("dead_lettered_at").notNull().defaultNow(),
  },
  (t) => [
    index("dead_letters_list_idx").on(sql`${t.deadLetteredAt} desc`, t.messageId),
    // Dead letters counted and redriven by error code (the console, POST .../dead-letters/redrive).
    index("dead_letters_code_idx").on(t.errorCode, t.deadLetteredAt),
  ],
);

/**
 * SMS opt-outs (STOP/START, issue 5 item 6), per pair: `sender` is our number the keyword was sent
 * to, `recipient` the person who opted out. A send from `sender` to `recipient` must fail at once.
 */
export const optOuts = pgTable(
  "opt_outs",
  {
    sender: text("sender").notNull(),
    recipient: text("recipient").notNull(),
    keyword: text("keyword").notNull(),
    /** the inbound message that carried the keyword */
    messageId: uuid("message_id"),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sender, t.recipient] }), index("opt_outs_recipient_idx").on(t.recipient)],
);

export const SUPPRESSION_REASONS = ["bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"] as const;

/**
 * Email suppressions (issue 15: SendGrid reported the address as bouncing, dropped, spam or
 * unsubscribed. Unlike SMS opt-outs they hold for every sender, as SendGrid's own suppressions do.
 */
export const emailSuppressions = pgTable(
  "email_suppressions",
  {
    /** the whole address, lower-cased */
    address: text("address").primaryKey(),
    reason: text("reason").notNull(),
    detail: text("detail"),
    providerEventId: text("provider_event_id"),
    /** the message whose event suppressed it, when matched */
    messageId: uuid("message_id"),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [index("email_suppressions_created_idx").on(sql`${t.createdAt} desc`, t.address), check("email_suppressions_reason_ck", inList("reason", SUPPRESSION_REASONS))],
);

/**
 * One row per webhook delivery that passed its signature check, kept ~25 h, for the 24-hour
 * statistics of GET /api/v1/webhooks/status/{provider} (docs/api.md).
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey(),
    provider: text("provider").notNull(),
    kind: text("kind").notNull(),
    statusCode: integer("status_code").notNull(),
    receivedAt: ts("received_at").notNull().defaultNow(),
  },
  (t) => [index("webhook_deliveries_provider_idx").on(t.provider, t.receivedAt)],
);

export const WEBHOOK_EVENT_TYPES = [
  "message.sent",
  "message.delivered",
  "message.undelivered",
  "message.failed",
  "message.canceled",
  "message.received",
] as const;

/**
 * The API user's webhook endpoints (Standard Webhooks). `secret` is kept as-is: signing needs the
 * key itself. `events` empty = every event type. An endpoint failing without a success since
 * `failing_since` for WEBHOOK_DISABLE_AFTER_SECONDS is disabled (`disabled_at`, `disabled_reason`).
 */
export const webhookEndpoints = pgTable(
  "webhook_endpoints",
  {
    id: uuid("id").primaryKey(),
    url: text("url").notNull(),
    description: text("description"),
    events: text("events").array().notNull().default(sql`'{}'::text[]`),
    secret: text("secret").notNull(),
    failingSince: ts("failing_since"),
    disabledAt: ts("disabled_at"),
    disabledReason: text("disabled_reason"),
    createdAt: ts("created_at").notNull().defaultNow(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  () => [check("webhook_endpoints_events_ck", sql.raw(`events <@ ARRAY[${WEBHOOK_EVENT_TYPES.map((t) => `'${t}'`).join(", ")}]::text[]`))],
);

/**
 * The outbox of status webhooks: one row per (event, target), written with the status change it
 * reports. `id` is the `webhook-id` header, the same on every attempt. `message` is the message
 * row after the change; the body is built from it. `next_attempt_at` is the due time of a pending
 * row, pushed past the attempt's timeout while it is in flight (the lease).
 */
export const webhookEvents = pgTable(
  "webhook_events",
  {
    id: uuid("id").primaryKey(),
    messageId: uuid("message_id")
      .notNull()
      .references(() => messages.id, { onDelete: "cascade" }),
    /** null: the message's status_callback (`url`) */
    endpointId: uuid("endpoint_id").references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    url: text("url"),
    type: text("type").notNull(),
    sequence: bigint("sequence", { mode: "number" }).notNull(),
    message: jsonb("message").notNull(),
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: ts("next_attempt_at"),
    lastAttemptAt: ts("last_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    /** the first bytes of the last answer only */
    lastResponse: text("last_response"),
    deliveredAt: ts("delivered_at"),
    createdAt: ts("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("webhook_events_due_idx").on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index("webhook_events_message_idx").on(t.messageId, t.createdAt),
    index("webhook_events_endpoint_idx").on(t.endpointId, t.createdAt).where(sql`endpoint_id IS NOT NULL`),
    check("webhook_events_target_ck", sql`(endpoint_id IS NULL) <> (url IS NULL)`),
    check("webhook_events_status_ck", inList("status", ["pending", "delivered", "failed"])),
  ],
);
