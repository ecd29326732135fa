// Message routes (API-CONTRACT §3): thin handlers over the send and message services.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { MESSAGE_STATUSES, MESSAGE_TYPES } from "../db/schema";
import { jsonBody } from "../http/body";
import type { AppContext, AppEnv } from "../http/context";
import { idempotent } from "../http/idempotent";
import { checkIdempotencyKey } from "../services/idempotency";
import { cannotRetry, changeStatus, getMessage, listEvents, listMessages, messageNotFound, resetForRetry } from "../services/messages";
import type { Message } from "../services/representation";
import { deliverAgain, deliverNew, type Delivery } from "../services/delivery";
import { storeOutbound, type SendSource } from "../services/send";
import type { MessageStatus } from "../services/status";
import type { Channel } from "../validation/address";
import { checkMetadata, checkUuidParam, enumQuery, has, Issues, parsePage, requireObjectBody, uuidQuery } from "../validation/common";
import { validateSend } from "../validation/messages";

/** Validate, store, enqueue: shared by the v1 and the legacy send routes. */
export async function sendFromRequest(
  c: AppContext,
  source: SendSource,
  typeOverride: (body: Record<string, unknown>) => Channel | undefined,
  shape: (message: Message) => { status: 200 | 201; body: unknown },
  extraMetadata: (body: Record<string, unknown>) => Record<string, unknown> = () => ({}),
): Promise<Response> {
  const config = c.get("config");
  const raw = requireObjectBody(jsonBody(c));
  const input = validateSend(raw, config.DEFAULT_PHONE_REGION, typeOverride(raw));
  Object.assign(input.metadata, extraMetadata(raw));
  const key = checkIdempotencyKey(c.req.header("idempotency-key"));
  return idempotent(c, key, raw, async () => {
    const message = await storeOutbound(c.get("deps"), input, { source, enqueue: !config.SYNC_MESSAGE_PROCESSING });
    return shape(await deliverNew(delivery(c), message));
  });
}

export function delivery(c: AppContext): Delivery {
  return {
    deps: c.get("deps"),
    env: c.env,
    config: c.get("config"),
    waitUntil: (work) => c.executionCtx.waitUntil(work),
    requestId: c.get("requestId"),
  };
}

export function registerMessageRoutes(app: OpenAPIHono<AppEnv>) {
  app.post("/api/v1/messages/send", (c) =>
    sendFromRequest(c, "api", () => undefined, (message) => ({ status: 201, body: message })),
  );

  app.get("/api/v1/messages", async (c) => {
    const query = c.req.query();
    const issues = new Issues();
    const filters = {
      conversationId: uuidQuery(query, "conversation_id", issues),
      parentId: uuidQuery(query, "parent_id", issues),
      status: enumQuery(query, "status", MESSAGE_STATUSES, issues),
      direction: enumQuery(query, "direction", ["outbound", "inbound"] as const, issues),
      type: enumQuery(query, "type", MESSAGE_TYPES, issues),
    };
    const page = parsePage(query, issues, 100, 50);
    issues.throwIfAny();
    return c.json(await listMessages(c.get("deps"), filters, page));
  });

  app.get("/api/v1/messages/:message_id", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    return c.json(await getMessage(c.get("deps"), id));
  });

  app.get("/api/v1/messages/:message_id/events", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    const issues = new Issues();
    const page = parsePage(c.req.query(), issues, 500, 100);
    issues.throwIfAny();
    return c.json(await listEvents(c.get("deps"), id, page));
  });

  app.patch("/api/v1/messages/:message_id/status", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    const body = requireObjectBody(jsonBody(c));
    const issues = new Issues();
    let status: MessageStatus | undefined;
    if (!has(body, "status")) issues.add("body.status", "Field required");
    else if (!(MESSAGE_STATUSES as readonly unknown[]).includes(body.status)) {
      issues.add("body.status", `status must be one of: ${MESSAGE_STATUSES.join(", ")}`);
    } else status = body.status as MessageStatus;
    const metadata = has(body, "metadata") ? checkMetadata(body.metadata, issues) : undefined;
    issues.throwIfAny();
    return c.json(await changeStatus(c.get("deps"), id, status!, metadata));
  });

  app.post("/api/v1/messages/:message_id/retry", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    const result = await resetForRetry(c.get("deps"), id, "retry_request", !c.get("config").SYNC_MESSAGE_PROCESSING);
    if (!result) throw messageNotFound();
    if ("status" in result) throw cannotRetry(result.status);
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember));
  });
}
