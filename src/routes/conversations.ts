// Conversation routes (docs/api.md).
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../http/context";
import { defineRoute, type ErrorDoc } from "../openapi";
import {
  createConversation,
  deleteConversation,
  getConversation,
  listConversations,
  markRead,
  searchConversations,
  updateConversation,
} from "../services/conversations";
import {
  ConversationIdParams,
  ConversationListQuery,
  ConversationPatchBody,
  CreateConversationBody,
  HardDeleteQuery,
  IncludeMessagesQuery,
  SearchBody,
} from "../validation/conversations";
import { Conversation, CONVERSATION_EXAMPLE, ConversationList } from "./schemas";

const CONVERSATION_NOT_FOUND: ErrorDoc = {
  description: "No conversation has this id.",
  example: { error: "not_found", message: "Conversation not found" },
};

const CreateRoute = defineRoute({
  method: "post",
  path: "/api/v1/conversations",
  scope: "send",
  operationId: "createConversation",
  summary: "Create a conversation, or find the pair's direct one",
  tags: ["conversations"],
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: CreateConversationBody,
          examples: {
            direct: { summary: "The direct conversation of an SMS pair", value: { participant_from: "+15551234567", participant_to: "+15559876543", channel_type: "sms" } },
            thread: { summary: "A new email thread", value: { type: "thread", participant_from: "a@example.com", participant_to: "b@example.com", title: "Support" } },
          },
        },
      },
    },
  },
  responses: {
    201: { description: "The conversation (for a direct pair, the existing one, reopened).", content: { "application/json": { schema: Conversation, example: CONVERSATION_EXAMPLE } } },
  },
});

const ListRoute = defineRoute({
  method: "get",
  path: "/api/v1/conversations",
  scope: "read",
  operationId: "listConversations",
  summary: "List conversations, most recently active first",
  tags: ["conversations"],
  request: { query: ConversationListQuery },
  responses: { 200: { description: "A page of conversations and the total.", content: { "application/json": { schema: ConversationList } } } },
});

const SearchRoute = defineRoute({
  method: "post",
  path: "/api/v1/conversations/search",
  scope: "read",
  operationId: "searchConversations",
  summary: "Search conversations by participant, title or message text",
  tags: ["conversations"],
  request: { body: { required: true, content: { "application/json": { schema: SearchBody, example: { query: "6543", limit: 10 } } } } },
  responses: { 200: { description: "The matching conversations, each once.", content: { "application/json": { schema: ConversationList } } } },
});

const GetRoute = defineRoute({
  method: "get",
  path: "/api/v1/conversations/{conversation_id}",
  scope: "read",
  operationId: "getConversation",
  summary: "Get a conversation",
  tags: ["conversations"],
  request: { params: ConversationIdParams, query: IncludeMessagesQuery },
  responses: { 200: { description: "The conversation.", content: { "application/json": { schema: Conversation } } } },
  errors: { 404: CONVERSATION_NOT_FOUND },
});

const UpdateRoute = defineRoute({
  method: "patch",
  path: "/api/v1/conversations/{conversation_id}",
  scope: "send",
  operationId: "updateConversation",
  summary: "Change a conversation's title, status or metadata",
  tags: ["conversations"],
  request: {
    params: ConversationIdParams,
    body: { required: true, content: { "application/json": { schema: ConversationPatchBody, example: { title: "New Title", metadata: { custom: "value" } } } } },
  },
  responses: { 200: { description: "The updated conversation.", content: { "application/json": { schema: Conversation } } } },
  errors: { 404: CONVERSATION_NOT_FOUND },
});

const DeleteRoute = defineRoute({
  method: "delete",
  path: "/api/v1/conversations/{conversation_id}",
  scope: "send",
  operationId: "deleteConversation",
  summary: "Close a conversation, or delete it with its messages",
  tags: ["conversations"],
  request: { params: ConversationIdParams, query: HardDeleteQuery },
  responses: { 204: { description: "Closed (a new message reopens it), or deleted." } },
  errors: { 404: CONVERSATION_NOT_FOUND },
});

const ReadRoute = defineRoute({
  method: "post",
  path: "/api/v1/conversations/{conversation_id}/read",
  scope: "send",
  operationId: "markConversationRead",
  summary: "Mark a conversation's inbound messages read",
  tags: ["conversations"],
  request: { params: ConversationIdParams },
  responses: { 200: { description: "The conversation, its unread count at 0.", content: { "application/json": { schema: Conversation } } } },
  errors: { 404: CONVERSATION_NOT_FOUND },
});

export function registerConversationRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(CreateRoute, async (c) => c.json(await createConversation(c.get("deps"), c.req.valid("json")), 201));

  app.openapi(ListRoute, async (c) => {
    const { participant, channel_type, status, type, limit, offset } = c.req.valid("query");
    return c.json(await listConversations(c.get("deps"), { participant, channelType: channel_type, status, type }, { limit, offset }), 200);
  });

  app.openapi(SearchRoute, async (c) => {
    const input = c.req.valid("json");
    return c.json(await searchConversations(c.get("deps"), input.query, input), 200);
  });

  app.openapi(GetRoute, async (c) => {
    const { conversation_id } = c.req.valid("param");
    return c.json(await getConversation(c.get("deps"), conversation_id, c.req.valid("query").include_messages), 200);
  });

  app.openapi(UpdateRoute, async (c) => c.json(await updateConversation(c.get("deps"), c.req.valid("param").conversation_id, c.req.valid("json")), 200));

  app.openapi(DeleteRoute, async (c) => {
    await deleteConversation(c.get("deps"), c.req.valid("param").conversation_id, c.req.valid("query").hard_delete);
    return c.body(null, 204);
  });

  app.openapi(ReadRoute, async (c) => c.json(await markRead(c.get("deps"), c.req.valid("param").conversation_id), 200));
}
