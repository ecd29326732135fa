// The message requests (docs/api.md) as zod schemas. A send body has one schema per
// message type, so that every rule that depends on the type (phone or email addresses, the body's
// limit in characters or bytes, MMS needing an attachment) is a plain field rule of that type's
// schema; the contract's messages are the schemas' messages and its field order is theirs.
import { z } from "@hono/zod-openapi";
import { MESSAGE_STATUSES, MESSAGE_TYPES } from "../db/schema";
import { PATCHABLE_STATUSES } from "../services/status";
import { type Channel, normalizeEmail, normalizeLoose, normalizePhone } from "./address";
import {
  ALWAYS,
  dispatched,
  inFieldOrder,
  isPlainObject,
  maxChars,
  Metadata,
  oneOf,
  pageQuery,
  parseOrThrow,
  querySchema,
  type Region,
  requestRegion,
  rfc3339,
  utf8Length,
  uuidValue,
} from "./common";
import { WEBHOOK_URL_MAX_LENGTH } from "./webhook-url";
import { Bcc, Cc, EmailFrom, type EmailFields, Html, recipientRules, ReplyTo, Subject } from "./email";

const SMS_BODY_MAX_CHARS = 1600;
const EMAIL_BODY_MAX_BYTES = 102_400;
const MAX_ATTACHMENTS = 10;
const MAX_URL_LENGTH = 2048;

/** What every message carries, whichever way it travels (send, provider call, inbound webhook). */
export interface MessageContent {
  type: Channel;
  from: string;
  to: string;
  body: string | null;
  attachments: string[];
  metadata: Record<string, unknown>;
  /** email only (src/validation/email.ts); absent or null for SMS/MMS */
  email?: EmailFields | null;
}

export interface SendInput extends MessageContent {
  parentId: string | null;
  conversationType: "direct" | "thread";
  /** epoch ms of a scheduled send; null sends now. Its window is checked by the send service. */
  sendAt?: number | null;
  /** status webhooks for this message (see STATUS_CALLBACK below) */
  statusCallback?: string | null;
}

/** How far ahead a send may be scheduled. */
export const SEND_AT_MAX_DAYS = 35;

export const OBJECT_BODY = "Request body must be a JSON object";
const SEND_FIELDS = ["type", "to", "from", "subject", "body", "html", "reply_to", "cc", "bcc", "attachments", "metadata", "parent_id", "conversation_type", "send_at", "status_callback"] as const;

/** "Field required" when the key is absent, else the field's own message. */
const requiredOr = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? "Field required" : message);

type Group = "phone" | "email";
const groupOf = (channel: Channel): Group => (channel === "email" ? "email" : "phone");

/** An address of the group, normalised (E.164, or the email with its domain lower-cased). */
export function address(group: Group, message: string, region: Region) {
  return z.string({ error: requiredOr(message) }).transform((value, ctx) => {
    const normalized = group === "email" ? normalizeEmail(value) : normalizePhone(value, region());
    if (normalized !== null) return normalized;
    ctx.issues.push({ code: "custom", message, input: value });
    return z.NEVER;
  });
}

export const ADDRESS_DOCS = {
  phone: "A phone number, stored in E.164; without a leading `+` it is read in the service's DEFAULT_PHONE_REGION.",
  email: "An email address; its domain is lower-cased.",
};

const SEND_EXAMPLES = { phone: { to: "+15559876543", from: "+15551234567" }, email: { to: "recipient@example.com", from: "sender@example.com" } };

function sendAddress(side: "to" | "from", group: Group, region: Region) {
  const who = side === "to" ? "Recipient" : "Sender";
  const message = group === "email" ? `${who} must be a valid email address` : `${who} must be a valid phone number for SMS/MMS`;
  return address(group, message, region).openapi({ description: ADDRESS_DOCS[group], example: SEND_EXAMPLES[group][side] });
}

const Text = z.string({ error: "Expected string" });

const BODIES = {
  phone: maxChars(Text, SMS_BODY_MAX_CHARS, `Body must be at most ${SMS_BODY_MAX_CHARS} characters for SMS/MMS`).openapi({
    description: `At most ${SMS_BODY_MAX_CHARS} characters.`,
    example: "Hello",
  }),
  email: Text.refine((text) => utf8Length(text) <= EMAIL_BODY_MAX_BYTES, `Body must be at most ${EMAIL_BODY_MAX_BYTES} bytes for email`).openapi({
    description: `At most ${EMAIL_BODY_MAX_BYTES} bytes in UTF-8. With \`html\`, the plain-text part; without it, HTML or text (a body with an HTML tag goes as text/html).`,
    example: "<p>Hello</p>",
  }),
};

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname.length > 0;
}

const URL_MESSAGE = "Attachment must be an absolute http(s) URL";
const ARRAY_MESSAGE = "Attachments must be an array of URLs";
const COUNT_MESSAGE = `At most ${MAX_ATTACHMENTS} attachments are allowed`;
const MMS_MESSAGE = "MMS requires at least one attachment";

const AttachmentUrl = z
  .string({ error: URL_MESSAGE })
  .max(MAX_URL_LENGTH, URL_MESSAGE)
  .refine(isHttpUrl, URL_MESSAGE)
  .openapi({ format: "uri", example: "https://example.com/image.jpg" });

// An oversized list fails on its count before any element is looked at (zod checks leading size
// limits first), as the contract orders these rules.
const Attachments = z.array(AttachmentUrl, { error: ARRAY_MESSAGE }).max(MAX_ATTACHMENTS, COUNT_MESSAGE).openapi({ description: "Media URLs." });
const MmsAttachments = z
  .array(AttachmentUrl, { error: (issue) => (issue.input == null ? MMS_MESSAGE : ARRAY_MESSAGE) })
  .min(1, MMS_MESSAGE)
  .max(MAX_ATTACHMENTS, COUNT_MESSAGE)
  .openapi({ description: "Media URLs: at least one for MMS." });

const ParentId = uuidValue().openapi({ description: "The message this one replies to: it joins that message's conversation." });
const ConversationType = oneOf("conversation_type", ["direct", "thread"]).openapi({
  description: "`thread` starts a new conversation for this message; `direct` (default) files it with the pair's.",
});

/** A body must say something: body text or attachments (an attachments value of another type has its own issue). */
function requireContent(value: unknown, ctx: z.RefinementCtx) {
  if (!isPlainObject(value)) return;
  const { body, attachments, html } = value;
  // An email's HTML part says something too.
  if (value.type === "email" && typeof html === "string" && html !== "") return;
  const bodyChecked = typeof body === "string" || body === null || body === undefined;
  const attachmentsChecked = attachments === null || attachments === undefined || Array.isArray(attachments);
  const attachmentCount = Array.isArray(attachments) ? attachments.length : 0;
  if (bodyChecked && !body && attachmentsChecked && attachmentCount === 0) {
    ctx.addIssue({ code: "custom", path: ["body"], message: "Message must have body or attachments" });
  }
}

function sendRules(value: unknown, ctx: z.RefinementCtx) {
  requireContent(value, ctx);
  inFieldOrder(ctx.issues, SEND_FIELDS);
}

const SendAt = rfc3339("send_at").openapi({
  description:
    `Schedules the send: an RFC 3339 date-time with its offset, in the future and at most ${SEND_AT_MAX_DAYS} days ahead (else 422). ` +
    "The message is stored `scheduled` and sent at that time; until then it can be canceled (POST /api/v1/messages/{message_id}/cancel).",
  example: "2025-01-15T10:30:00Z",
});
// ---------------------------------------------------------------------------------------------
// status_callback (status webhooks): this message's events are also POSTed to this URL, signed
// with WEBHOOK_SIGNING_SECRET per the Standard Webhooks specification. The schema checks the
// form; the send service checks the destination (https to a public host outside development).

const STATUS_CALLBACK_MESSAGE = "status_callback must be an absolute http(s) URL";
const STATUS_CALLBACK = {
  status_callback: z
    .string({ error: STATUS_CALLBACK_MESSAGE })
    .max(WEBHOOK_URL_MAX_LENGTH, `status_callback must be at most ${WEBHOOK_URL_MAX_LENGTH} characters`)
    .refine((v) => URL.canParse(v) && ["http:", "https:"].includes(new URL(v).protocol), STATUS_CALLBACK_MESSAGE)
    .nullish()
    .openapi({
      format: "uri",
      description:
        "Like Twilio's StatusCallback: this message's status webhooks (message.sent, message.delivered, message.undelivered, message.failed, " +
        "message.canceled) are POSTed here too, signed with the service's WEBHOOK_SIGNING_SECRET per the Standard Webhooks specification. " +
        "Outside development: https to a public host name.",
      example: "https://example.com/hooks/message-status",
    }),
};

// ---------------------------------------------------------------------------------------------

const shared = {
  metadata: Metadata.nullish(),
  parent_id: ParentId.nullish(),
  conversation_type: ConversationType.nullish(),
  send_at: SendAt.nullish(),
  ...STATUS_CALLBACK,
};

function typedFields(channel: Channel, region: Region) {
  const group = groupOf(channel);
  return {
    to: sendAddress("to", group, region),
    from: sendAddress("from", group, region),
    body: BODIES[group].nullish(),
    attachments: channel === "mms" ? MmsAttachments : Attachments.nullish(),
    ...shared,
  };
}

interface ParsedSend {
  to: string;
  /** an email's sender arrives parsed into its address and display name */
  from: string | { name: string | null; address: string };
  subject?: string | null;
  html?: string | null;
  reply_to?: string | null;
  cc?: string[] | null;
  bcc?: string[] | null;
  body?: string | null;
  attachments?: string[] | null;
  metadata?: Record<string, unknown> | null;
  parent_id?: string | null;
  conversation_type?: "direct" | "thread" | null;
  send_at?: number | null;
  status_callback?: string | null;
}

/** The email fields of a v1 send; the legacy route's emails have none of their own (metadata.subject still applies). */
function emailFields(value: ParsedSend): EmailFields | null {
  if (typeof value.from === "string") return null;
  return {
    subject: value.subject ?? null,
    html: value.html ?? null,
    from_name: value.from.name,
    reply_to: value.reply_to ?? null,
    cc: value.cc ?? [],
    bcc: value.bcc ?? [],
  };
}

function toSendInput(type: Channel, value: ParsedSend, extraMetadata: Record<string, unknown> = {}): SendInput {
  const email = type === "email" ? emailFields(value) : null;
  return {
    type,
    from: typeof value.from === "string" ? value.from : value.from.address,
    email,
    to: value.to,
    body: value.body ?? null,
    attachments: value.attachments ?? [],
    metadata: { ...(value.metadata ?? {}), ...extraMetadata },
    parentId: value.parent_id ?? null,
    conversationType: value.conversation_type ?? "direct",
    sendAt: value.send_at ?? null,
    statusCallback: value.status_callback ?? null,
  };
}

const EXAMPLES: Record<Channel, Record<string, unknown>> = {
  sms: { type: "sms", from: "+15551234567", to: "+15559876543", body: "Your code is 123456" },
  mms: { type: "mms", from: "+15551234567", to: "+15559876543", body: "Look", attachments: ["https://example.com/image.jpg"] },
  email: {
    type: "email",
    from: "Ann Example <ann@example.com>",
    to: "recipient@example.com",
    subject: "Welcome",
    body: "Hello",
    html: "<p>Hello</p>",
    reply_to: "support@example.com",
    cc: ["cc@example.com"],
  },
};

/** The email-only fields of POST /api/v1/messages/send (src/validation/email.ts). */
const EMAIL_ONLY = {
  from: EmailFrom,
  subject: Subject.nullish(),
  html: Html.nullish(),
  reply_to: ReplyTo.nullish(),
  cc: Cc.nullish(),
  bcc: Bcc.nullish(),
};

function sendVariant(channel: Channel, region: Region) {
  const name = { sms: "SendSmsRequest", mms: "SendMmsRequest", email: "SendEmailRequest" }[channel];
  const fields = { type: z.literal(channel), ...typedFields(channel, region), ...(channel === "email" ? EMAIL_ONLY : {}) };
  return z
    .object(fields)
    .superRefine((value, ctx) => {
      if (channel === "email" && isPlainObject(value)) recipientRules(value, ctx);
      sendRules(value, ctx);
    }, ALWAYS)
    .openapi(name, { example: EXAMPLES[channel] });
}

const isChannel = (value: unknown): value is Channel => (MESSAGE_TYPES as readonly unknown[]).includes(value);
const TYPE_MESSAGE = `type must be one of: ${MESSAGE_TYPES.join(", ")}`;

/** POST /api/v1/messages/send: the type chooses the schema. */
function sendRequest(region: Region) {
  const untyped = z
    .object(
      {
        type: z.enum(MESSAGE_TYPES, { error: requiredOr(TYPE_MESSAGE) }),
        to: z.string({ error: requiredOr("Expected string") }),
        from: z.string({ error: requiredOr("Expected string") }),
        body: Text.nullish(),
        attachments: Attachments.nullish(),
        ...shared,
      },
      { error: OBJECT_BODY },
    )
    .superRefine(sendRules, ALWAYS);
  const typed = z.discriminatedUnion("type", [sendVariant("sms", region), sendVariant("mms", region), sendVariant("email", region)]);
  return dispatched((input) => (isPlainObject(input) && isChannel(input.type) ? undefined : untyped), typed)
    .transform((value) => toSendInput(value.type, value as ParsedSend))
    .openapi("SendMessageRequest");
}

// ---------------------------------------------------------------------------------------------
// Legacy sends (docs/api.md): the route decides the type

const LegacyTimestamp = z
  .preprocess((value) => (typeof value === "string" ? value : undefined), z.string().optional())
  .openapi({ description: "Stored in the message's metadata as `timestamp`; a value that is not a string is ignored.", example: "2024-11-01T14:00:00Z" });

const LegacyPhoneType = z
  .preprocess((value) => (value === "sms" || value === "mms" ? value : undefined), z.enum(["sms", "mms"]).optional())
  .openapi({ description: "`sms` or `mms`; any other value is ignored and the type is `mms` when there are attachments, else `sms`." });

function legacyPhoneType(value: { type?: "sms" | "mms"; attachments?: unknown }): "sms" | "mms" {
  return value.type ?? (Array.isArray(value.attachments) && value.attachments.length > 0 ? "mms" : "sms");
}

/** POST /api/messages/sms: an SMS, or an MMS when the body says so or carries attachments. */
function legacySmsRequest(region: Region) {
  return z
    .object(
      {
        type: LegacyPhoneType,
        ...typedFields("sms", region),
        timestamp: LegacyTimestamp,
      },
      { error: OBJECT_BODY },
    )
    .superRefine((value, ctx) => {
      if (isPlainObject(value) && legacyPhoneType(value) === "mms") {
        const { attachments } = value;
        if (attachments === null || attachments === undefined || (Array.isArray(attachments) && attachments.length === 0)) {
          ctx.addIssue({ code: "custom", path: ["attachments"], message: MMS_MESSAGE });
        }
      }
      sendRules(value, ctx);
    }, ALWAYS)
    .openapi("LegacySmsRequest", { example: { from: "+12016661234", to: "+18045551234", type: "sms", body: "Hi", attachments: null, timestamp: "2024-11-01T14:00:00Z" } })
    .transform((value) => toSendInput(legacyPhoneType(value), value, value.timestamp === undefined ? {} : { timestamp: value.timestamp }));
}

/** POST /api/messages/email. */
function legacyEmailRequest(region: Region) {
  return z
    .object({ ...typedFields("email", region), timestamp: LegacyTimestamp }, { error: OBJECT_BODY })
    .superRefine(sendRules, ALWAYS)
    .openapi("LegacyEmailRequest", { example: { from: "a@example.com", to: "b@example.com", body: "Hi", timestamp: "2024-11-01T14:00:00Z" } })
    .transform((value) => toSendInput("email", value, value.timestamp === undefined ? {} : { timestamp: value.timestamp }));
}

const sendSchemas = new Map<string, ReturnType<typeof sendRequest>>();

/** The send route's validation outside a request (the fuzz tests), with a fixed region. */
export function validateSend(body: unknown, region: string): SendInput {
  let schema = sendSchemas.get(region);
  if (!schema) sendSchemas.set(region, (schema = sendRequest(() => region)));
  return parseOrThrow(schema, body);
}

// ---------------------------------------------------------------------------------------------
// The routes' schemas

export const SendBody = sendRequest(requestRegion);
export const LegacySmsBody = legacySmsRequest(requestRegion);
export const LegacyEmailBody = legacyEmailRequest(requestRegion);

const IDEMPOTENCY_KEY_MESSAGE = "Idempotency-Key must be 1-255 printable ASCII characters";

export const IdempotencyHeaders = z.object({
  "Idempotency-Key": z
    .string()
    .min(1, IDEMPOTENCY_KEY_MESSAGE)
    .max(255, IDEMPOTENCY_KEY_MESSAGE)
    .regex(/^[\x20-\x7e]*$/, IDEMPOTENCY_KEY_MESSAGE)
    .optional()
    .openapi({
      description:
        "1-255 printable ASCII characters, kept 24 hours per API key and route. The first 2xx answer is stored and replayed byte for byte, " +
        "with `Idempotent-Replayed: true`, to every later request with the same key and the same body; another body, or the same one while " +
        "the first is still being processed, is a 409. A 4xx or 5xx answer releases the key.",
      example: "order-42",
    }),
});

export const MessageIdParams = z.object({ message_id: uuidValue() });

/** A recipient or sender filter: a phone number or email normalised as stored, else the text as given. */
const addressFilter = (side: string) =>
  z
    .string()
    .max(320)
    .optional()
    .transform((value) => (value ? normalizeLoose(value, requestRegion()) : undefined))
    .openapi({ description: `Exact ${side} address; phone numbers and emails are normalised as stored.`, example: "+15559876543" });

export const MessageListQuery = querySchema({
  to: addressFilter("recipient"),
  from: addressFilter("sender"),
  conversation_id: uuidValue().optional(),
  parent_id: uuidValue().optional(),
  status: oneOf("status", MESSAGE_STATUSES).optional(),
  direction: oneOf("direction", ["outbound", "inbound"]).optional(),
  type: oneOf("type", MESSAGE_TYPES).optional(),
  created_after: rfc3339("created_after")
    .optional()
    .openapi({ description: "Only messages created at or after this time (RFC 3339 with offset). After `created_before` gives an empty page." }),
  created_before: rfc3339("created_before").optional().openapi({ description: "Only messages created before this time (RFC 3339 with offset)." }),
  ...pageQuery(100, 50),
});

export const EventListQuery = querySchema(pageQuery(500, 100));

export const StatusPatchBody = z
  .object(
    {
      status: z.enum(PATCHABLE_STATUSES, { error: requiredOr(`status must be one of: ${PATCHABLE_STATUSES.join(", ")}`) }),
      metadata: Metadata.nullish()
        .transform((value) => (value === null ? {} : value))
        .openapi({ description: "Merged into the message's metadata: top-level keys replace, null removes a key." }),
    },
    { error: OBJECT_BODY },
  )
  .openapi("MessageStatusPatch", { example: { status: "delivered", metadata: { provider_response: "ok" } } });
