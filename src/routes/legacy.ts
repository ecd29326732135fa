// Legacy routes (API-CONTRACT §7): the pre-v1 shapes over the same services.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../http/context";
import { listConversations } from "../services/conversations";
import { listMessages } from "../services/messages";
import type { Conversation, Message } from "../services/representation";
import { normalizeLoose } from "../validation/address";
import { Issues, parsePage, UUID } from "../validation/common";
import { sendFromRequest } from "./messages";

const legacyResult = (message: Message) => ({
  status: 200 as const,
  body: { status: "success", message_id: message.id, conversation_id: message.conversation_id, type: message.type, provider: message.provider },
});

const timestampMetadata = (body: Record<string, unknown>) => (typeof body.timestamp === "string" ? { timestamp: body.timestamp } : {});

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

export function registerLegacyRoutes(app: OpenAPIHono<AppEnv>) {
  app.post("/api/messages/sms", (c) =>
    sendFromRequest(
      c,
      "legacy",
      (body) => {
        if (body.type === "sms" || body.type === "mms") return body.type;
        return Array.isArray(body.attachments) && body.attachments.length > 0 ? "mms" : "sms";
      },
      legacyResult,
      timestampMetadata,
    ),
  );

  app.post("/api/messages/email", (c) => sendFromRequest(c, "legacy", () => "email", legacyResult, timestampMetadata));

  app.get("/api/conversations", async (c) => {
    const query = c.req.query();
    const issues = new Issues();
    const page = parsePage(query, issues, 100, 50);
    issues.throwIfAny();
    const participant = query.participant ? normalizeLoose(query.participant, c.get("config").DEFAULT_PHONE_REGION) : undefined;
    const result = await listConversations(c.get("deps"), { participant }, page);
    return c.json({ ...result, conversations: result.conversations.map(legacyConversation) });
  });

  app.get("/api/conversations/:id/messages", async (c) => {
    const id = c.req.param("id");
    const issues = new Issues();
    const page = parsePage(c.req.query(), issues, 100, 50);
    issues.throwIfAny();
    // The one exception to the UUID rule (§7.6): an unknown or malformed id is an empty list.
    if (!UUID.test(id)) return c.json({ messages: [], total: 0, conversation_id: id, limit: page.limit, offset: page.offset });
    const result = await listMessages(c.get("deps"), { conversationId: id.toLowerCase() }, page);
    return c.json({ messages: result.messages.map(legacyMessage), total: result.total, conversation_id: id, limit: page.limit, offset: page.offset });
  });
}
