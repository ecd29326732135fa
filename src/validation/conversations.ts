// The conversation requests (docs/api.md) as zod schemas. A new conversation's
// participants are addresses of its channel, so a well-formed request has one schema per channel
// group; one with a participant missing or an unknown channel gets the rules that remain.
import { z } from "@hono/zod-openapi";
import { CONVERSATION_STATUSES, CONVERSATION_TYPES, MESSAGE_TYPES } from "../db/schema";
import type { ConversationPatch, CreateConversation } from "../services/conversations";
import { normalizeLoose } from "./address";
import {
  ALWAYS,
  booleanQuery,
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
  uuidValue,
} from "./common";
import { ADDRESS_DOCS, address, OBJECT_BODY } from "./messages";

const CREATE_FIELDS = ["type", "channel_type", "", "participant_from", "participant_to", "title", "metadata"] as const;

const Title = maxChars(z.string({ error: "Expected string" }), 255, "title must be at most 255 characters")
  .nullable()
  .openapi({ description: "At most 255 characters; null clears it.", example: "Support" });

const ConversationKind = oneOf("type", CONVERSATION_TYPES).openapi({
  description: "`direct` (default): the pair's one conversation, found or created; `thread`: always a new one.",
});

function participant(key: "participant_from" | "participant_to", group: "phone" | "email", region: Region) {
  const message = group === "email" ? `${key} must be a valid email address` : `${key} must be a valid phone number for SMS/MMS`;
  const example = { phone: { participant_from: "+15551234567", participant_to: "+15559876543" }, email: { participant_from: "a@example.com", participant_to: "b@example.com" } };
  return address(group, message, region).openapi({ description: ADDRESS_DOCS[group], example: example[group][key] });
}

function createVariant(group: "phone" | "email", region: Region) {
  const channel =
    group === "email"
      ? z.literal("email").nullish().openapi({ description: "`email` (the default when absent)." })
      : z.enum(["sms", "mms"]).openapi({ description: "SMS and MMS share a pair's conversation." });
  const example =
    group === "email"
      ? { type: "thread", participant_from: "a@example.com", participant_to: "b@example.com", title: "Support" }
      : { participant_from: "+15551234567", participant_to: "+15559876543", channel_type: "sms" };
  return z
    .object({
      type: ConversationKind.nullish(),
      channel_type: channel,
      participant_from: participant("participant_from", group, region),
      participant_to: participant("participant_to", group, region),
      title: Title.optional(),
      metadata: Metadata.nullish(),
    })
    // Not named: a named variant would make the document state a discriminator, which OpenAPI only
    // allows on a required property, and channel_type may be absent (email).
    .openapi({ title: group === "email" ? "Email conversation" : "SMS/MMS conversation", example });
}

const present = (value: unknown) => value !== undefined && value !== null;

/** The rules that need neither the participants' channel nor both participants. */
const incomplete = z
  .object(
    {
      type: ConversationKind.nullish(),
      channel_type: oneOf("channel_type", MESSAGE_TYPES).nullish(),
      participant_from: z.unknown().optional(),
      participant_to: z.unknown().optional(),
      title: Title.optional(),
      metadata: Metadata.nullish(),
    },
    { error: OBJECT_BODY },
  )
  .superRefine((value, ctx) => {
    if (isPlainObject(value) && !(present(value.participant_from) && present(value.participant_to))) {
      const kind = value.type === "thread" ? "thread" : "direct";
      ctx.addIssue({ code: "custom", path: [], message: `${kind} conversations require 'participant_from' and 'participant_to'` });
    }
    inFieldOrder(ctx.issues, CREATE_FIELDS);
  }, ALWAYS);

function dispatchable(input: unknown): boolean {
  if (!isPlainObject(input) || !present(input.participant_from) || !present(input.participant_to)) return false;
  return !present(input.channel_type) || (MESSAGE_TYPES as readonly unknown[]).includes(input.channel_type);
}

/** POST /api/v1/conversations: the channel (email when absent) chooses the participants' schema. */
function createConversationRequest(region: Region) {
  const typed = z.discriminatedUnion("channel_type", [createVariant("phone", region), createVariant("email", region)]);
  return dispatched((input) => (dispatchable(input) ? undefined : incomplete), typed)
    .transform(
      (value): CreateConversation => ({
        type: value.type ?? "direct",
        channelType: value.channel_type ?? "email",
        participantFrom: value.participant_from,
        participantTo: value.participant_to,
        title: value.title ?? null,
        metadata: value.metadata ?? {},
      }),
    )
    .openapi("CreateConversationRequest");
}

export const CreateConversationBody = createConversationRequest(requestRegion);

export const ConversationPatchBody = z
  .object(
    {
      title: Title.optional(),
      status: oneOf("status", CONVERSATION_STATUSES).optional(),
      metadata: Metadata.nullish().openapi({ description: "Merged into the conversation's metadata: top-level keys replace, null removes a key." }),
    },
    { error: OBJECT_BODY },
  )
  .openapi("ConversationPatch", { example: { title: "New Title", metadata: { custom: "value" } } })
  .transform((value) => {
    const patch: ConversationPatch = {};
    if (value.title !== undefined) patch.title = value.title;
    if (value.status !== undefined) patch.status = value.status;
    if (value.metadata) patch.metadata = value.metadata;
    return patch;
  });

const QUERY_MESSAGE = "query must be 1-200 characters";
const integerField = (name: string, min: number, max: number, fallback: number) => {
  const message = `${name} must be an integer between ${min} and ${max}`;
  return z
    .int({ error: message })
    .min(min, message)
    .max(max, message)
    .nullish()
    .transform((value) => value ?? fallback)
    .openapi({ default: fallback });
};

export const SearchBody = z
  .object(
    {
      query: maxChars(z.string({ error: QUERY_MESSAGE }).min(1, QUERY_MESSAGE), 200, QUERY_MESSAGE).openapi({
        description: "Matched literally (% and _ included) against participants, titles and message bodies.",
      }),
      limit: integerField("limit", 1, 50, 20),
      offset: integerField("offset", 0, Number.MAX_SAFE_INTEGER, 0),
    },
    { error: OBJECT_BODY },
  )
  .openapi("ConversationSearch", { example: { query: "6543", limit: 10 } });

/** A filter value: a phone number or email normalised as stored, else the text as given. */
const participantFilter = z
  .string()
  .optional()
  .transform((value) => (value ? normalizeLoose(value, requestRegion()) : undefined))
  .openapi({ description: "Either participant; phone numbers and emails are normalised as stored.", example: "+15559876543" });

export const ConversationListQuery = querySchema({
  participant: participantFilter,
  channel_type: oneOf("channel_type", MESSAGE_TYPES).optional(),
  status: oneOf("status", CONVERSATION_STATUSES).optional(),
  type: oneOf("type", CONVERSATION_TYPES).optional(),
  ...pageQuery(100, 50),
});

export const LegacyConversationListQuery = querySchema({ participant: participantFilter, ...pageQuery(100, 50) });

export const ConversationIdParams = z.object({ conversation_id: uuidValue() });
export const IncludeMessagesQuery = querySchema({
  include_messages: booleanQuery("include_messages").openapi({ description: "Embed the messages, oldest first (at most 500)." }),
});
export const HardDeleteQuery = querySchema({
  hard_delete: booleanQuery("hard_delete").openapi({ description: "Remove the conversation and its messages instead of closing it." }),
});

const createSchemas = new Map<string, ReturnType<typeof createConversationRequest>>();

/** The create route's validation outside a request (the fuzz tests), with a fixed region. */
export function validateCreateConversation(body: unknown, region: string): CreateConversation {
  let schema = createSchemas.get(region);
  if (!schema) createSchemas.set(region, (schema = createConversationRequest(() => region)));
  return parseOrThrow(schema, body);
}

/** The search route's validation outside a request (the fuzz tests). */
export function validateSearch(body: unknown) {
  return parseOrThrow(SearchBody, body);
}
