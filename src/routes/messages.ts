// Message routes (API-CONTRACT §3): thin handlers over the send and message services.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { MESSAGE_STATUSES, MESSAGE_TYPES } from "../db/schema";
import { jsonBody } from "../http/body";
import type { AppContext, AppEnv } from "../http/context";
import { answerSend } from "../http/idempotent";
import { checkIdempotencyKey, keyClaim } from "../services/idempotency";
import { cannotRetry, changeStatus, getMessage, listEvents, listMessages, messageNotFound, resetForRetry } from "../services/messages";
import type { Message } from "../services/representation";
import { deliverAgain, type Delivery } from "../services/delivery";
import { acceptSend, type SendSource } from "../services/send";
import { PATCHABLE_STATUSES, type MessageStatus } from "../services/status";
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
  const header = checkIdempotencyKey(c.req.header("idempotency-key"));
  const key = header === undefined ? undefined : await keyClaim(`${c.get("apiKeyHash") ?? "shared"}:${c.req.method}:${c.get("route")}`, header, raw);
  const accepted = await acceptSend(c.get("deps"), config, input, { source, enqueue: !config.SYNC_MESSAGE_PROCESSING, key, deadline: c.get("deadline") });
  return answerSend(c, delivery(c), accepted, key, shape);
}

export function delivery(c: AppContext): Delivery {
  return {
    deps: c.get("deps"),
    env: c.env,
    config: c.get("config"),
    waitUntil: (work) => c.executionCtx.waitUntil(work),
    requestId: c.get("requestId"),
    deadline: c.get("deadline"),
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
    else if (!(PATCHABLE_STATUSES as readonly unknown[]).includes(body.status)) {
      issues.add("body.status", `status must be one of: ${PATCHABLE_STATUSES.join(", ")}`);
    } else status = body.status as MessageStatus;
    const metadata = has(body, "metadata") ? checkMetadata(body.metadata, issues) : undefined;
    issues.throwIfAny();
    const message = await changeStatus(c.get("deps"), id, status!, metadata);
    // A message moved to retry is due now: back on its stream, so that the worker sees it.
    if (message.status === "retry") return c.json(await deliverAgain(delivery(c), message, null));
    return c.json(message);
  });

  app.post("/api/v1/messages/:message_id/retry", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    const result = await resetForRetry(c.get("deps"), id, "retry_request", !c.get("config").SYNC_MESSAGE_PROCESSING);
    if (!result) throw messageNotFound();
    if ("status" in result) throw cannotRetry(result.status);
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember));
  });
}
