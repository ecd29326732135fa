// Conversation routes (API-CONTRACT §4).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { CONVERSATION_STATUSES, CONVERSATION_TYPES, MESSAGE_TYPES } from "../db/schema";
import { validationError } from "../errors";
import { jsonBody } from "../http/body";
import type { AppEnv } from "../http/context";
import {
  createConversation,
  deleteConversation,
  getConversation,
  listConversations,
  markRead,
  searchConversations,
  updateConversation,
} from "../services/conversations";
import { normalizeLoose } from "../validation/address";
import { checkUuidParam, enumQuery, Issues, parsePage, requireObjectBody } from "../validation/common";
import { validateConversationPatch, validateCreateConversation, validateSearch } from "../validation/conversations";

function booleanQuery(value: string | undefined, name: string): boolean {
  if (value === undefined) return false;
  if (value === "true") return true;
  if (value === "false") return false;
  throw validationError([{ path: `query.${name}`, message: `${name} must be true or false` }]);
}

export function registerConversationRoutes(app: OpenAPIHono<AppEnv>) {
  app.post("/api/v1/conversations", async (c) => {
    const input = validateCreateConversation(requireObjectBody(jsonBody(c)), c.get("config").DEFAULT_PHONE_REGION);
    return c.json(await createConversation(c.get("deps"), input), 201);
  });

  app.get("/api/v1/conversations", async (c) => {
    const query = c.req.query();
    const issues = new Issues();
    const filters = {
      participant: query.participant ? normalizeLoose(query.participant, c.get("config").DEFAULT_PHONE_REGION) : undefined,
      channelType: enumQuery(query, "channel_type", MESSAGE_TYPES, issues),
      status: enumQuery(query, "status", CONVERSATION_STATUSES, issues),
      type: enumQuery(query, "type", CONVERSATION_TYPES, issues),
    };
    const page = parsePage(query, issues, 100, 50);
    issues.throwIfAny();
    return c.json(await listConversations(c.get("deps"), filters, page));
  });

  app.post("/api/v1/conversations/search", async (c) => {
    const input = validateSearch(requireObjectBody(jsonBody(c)));
    return c.json(await searchConversations(c.get("deps"), input.query, input));
  });

  app.get("/api/v1/conversations/:conversation_id", async (c) => {
    const id = checkUuidParam(c.req.param("conversation_id"), "conversation_id");
    const include = booleanQuery(c.req.query("include_messages"), "include_messages");
    return c.json(await getConversation(c.get("deps"), id, include));
  });

  app.patch("/api/v1/conversations/:conversation_id", async (c) => {
    const id = checkUuidParam(c.req.param("conversation_id"), "conversation_id");
    const patch = validateConversationPatch(requireObjectBody(jsonBody(c)));
    return c.json(await updateConversation(c.get("deps"), id, patch));
  });

  app.delete("/api/v1/conversations/:conversation_id", async (c) => {
    const id = checkUuidParam(c.req.param("conversation_id"), "conversation_id");
    const hard = booleanQuery(c.req.query("hard_delete"), "hard_delete");
    await deleteConversation(c.get("deps"), id, hard);
    return c.body(null, 204);
  });

  app.post("/api/v1/conversations/:conversation_id/read", async (c) => {
    const id = checkUuidParam(c.req.param("conversation_id"), "conversation_id");
    return c.json(await markRead(c.get("deps"), id));
  });
}
