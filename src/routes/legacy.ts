// Legacy routes (docs/api.md): the pre-v1 shapes over the same services.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { listConversations } from "../services/conversations";
import { listMessages } from "../services/messages";
import type { Conversation, Message } from "../services/representation";
import { pageQuery, querySchema, UUID } from "../validation/common";
import { LegacyConversationListQuery } from "../validation/conversations";
import { IdempotencyHeaders, LegacyEmailBody, LegacySmsBody } from "../validation/messages";
import { IDEMPOTENCY_CONFLICT, REPLAYED_HEADER, SEND_VALIDATION_ERROR, sendFromRequest } from "./messages";
import { LegacyConversationList, LegacyMessageList, LegacySendResult } from "./schemas";

const legacyResult = (message: Message) => ({
  status: 200 as const,
  body: { status: "success", message_id: message.id, conversation_id: message.conversation_id, type: message.type, provider: message.provider },
});

const legacyConversation = (c: Conversation) => ({
  id: c.id,
  participant_from: c.participant_from,
  participant_to: c.participant_to,
  channel_type: c.channel_type,
  status: c.status,
  message_count: c.message_count,
  unread_count: c.unread_count,
  last_message_at: c.last_message_at,
  created_at: c.created_at,
});

const legacyMessage = (m: Message) => ({
  id: m.id,
  conversation_id: m.conversation_id,
  direction: m.direction,
  type: m.type,
  from: m.from,
  to: m.to,
  body: m.body,
  status: m.status,
  provider: m.provider,
  created_at: m.created_at,
  sent_at: m.sent_at,
});

const sendResponses = {
  200: {
    description: "Stored and queued (or sent inline in sync mode).",
    headers: REPLAYED_HEADER,
    content: { "application/json": { schema: LegacySendResult } },
  },
};

const SmsRoute = defineRoute({
  method: "post",
  path: "/api/messages/sms",
  scope: "send",
  operationId: "legacySendSms",
  summary: "Legacy: send an SMS or MMS",
  tags: ["legacy"],
  request: {
    headers: IdempotencyHeaders,
    body: {
      required: true,
      content: {
        "application/json": {
          schema: LegacySmsBody,
          example: { from: "+12016661234", to: "+18045551234", type: "sms", body: "Hi", attachments: null, timestamp: "2024-11-01T14:00:00Z" },
        },
      },
    },
  },
  responses: sendResponses,
  errors: { 409: IDEMPOTENCY_CONFLICT, 422: SEND_VALIDATION_ERROR },
});

const EmailRoute = defineRoute({
  method: "post",
  path: "/api/messages/email",
  scope: "send",
  operationId: "legacySendEmail",
  summary: "Legacy: send an email",
  tags: ["legacy"],
  request: {
    headers: IdempotencyHeaders,
    body: {
      required: true,
      content: { "application/json": { schema: LegacyEmailBody, example: { from: "a@example.com", to: "b@example.com", body: "Hi", timestamp: "2024-11-01T14:00:00Z" } } },
    },
  },
  responses: sendResponses,
  errors: { 409: IDEMPOTENCY_CONFLICT, 422: SEND_VALIDATION_ERROR },
});

const ConversationsRoute = defineRoute({
  method: "get",
  path: "/api/conversations",
  scope: "read",
  operationId: "legacyListConversations",
  summary: "Legacy: list conversations",
  tags: ["legacy"],
  request: { query: LegacyConversationListQuery },
  responses: { 200: { description: "A page of conversations in the legacy shape.", content: { "application/json": { schema: LegacyConversationList } } } },
});

const MessagesRoute = defineRoute({
  method: "get",
  path: "/api/conversations/{id}/messages",
  scope: "read",
  operationId: "legacyListConversationMessages",
  summary: "Legacy: a conversation's messages",
  description: "The one exception to the UUID rule: an unknown or malformed id is an empty list, not a 404 or 422.",
  tags: ["legacy"],
  request: {
    params: z.object({ id: z.string().openapi({ description: "The conversation's id.", example: "0190a5c2-7b1d-7a11-8e2f-5c6d7e8f9a0b" }) }),
    query: querySchema(pageQuery(100, 50)),
  },
  responses: { 200: { description: "A page of the conversation's messages, newest first.", content: { "application/json": { schema: LegacyMessageList } } } },
});

export function registerLegacyRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(SmsRoute, (c) => sendFromRequest(c, "legacy", c.req.valid("json"), c.req.valid("header")["Idempotency-Key"], legacyResult));

  app.openapi(EmailRoute, (c) => sendFromRequest(c, "legacy", c.req.valid("json"), c.req.valid("header")["Idempotency-Key"], legacyResult));

  app.openapi(ConversationsRoute, async (c) => {
    const { participant, limit, offset } = c.req.valid("query");
    const result = await listConversations(c.get("deps"), { participant }, { limit, offset });
    return c.json({ ...result, conversations: result.conversations.map(legacyConversation) }, 200);
  });

  app.openapi(MessagesRoute, async (c) => {
    const { id } = c.req.valid("param");
    const page = c.req.valid("query");
    if (!UUID.test(id)) return c.json({ messages: [], total: 0, conversation_id: id, limit: page.limit, offset: page.offset }, 200);
    const result = await listMessages(c.get("deps"), { conversationId: id.toLowerCase() }, page);
    return c.json({ messages: result.messages.map(legacyMessage), total: result.total, conversation_id: id, limit: page.limit, offset: page.offset }, 200);
  });
}
