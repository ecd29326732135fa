// Message routes (docs/api.md): thin handlers over the send and message services.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { MESSAGE_STATUSES } from "../db/schema";
import type { AppContext, AppEnv } from "../http/context";
import { answerSend } from "../http/idempotent";
import { keyClaim } from "../services/idempotency";
import { cannotRetry, changeStatus, getMessage, LIST_TOTAL_CAP, listEvents, listMessages, messageNotFound, resetForRetry } from "../services/messages";
import type { Message as MessageRepresentation } from "../services/representation";
import { deliverAgain, type Delivery } from "../services/delivery";
import { acceptSend, type SendSource } from "../services/send";
import { cancelMessage, notCancelable, onMessageCanceled } from "../services/cancel";
import { ringWebhookWorker } from "../services/outbound-webhooks";
import { runAfterResponse } from "../http/context";
import { defineRoute, type ErrorDoc } from "../openapi";
import {
  EventListQuery,
  IdempotencyHeaders,
  MessageIdParams,
  MessageListQuery,
  SendBody,
  type SendInput,
  StatusPatchBody,
} from "../validation/messages";
import { EventList, Message, MESSAGE_EXAMPLE, MessageList } from "./schemas";

/** Store, enqueue, answer: shared by the v1 and the legacy send routes, under the Idempotency-Key. */
export async function sendFromRequest(
  c: AppContext,
  source: SendSource,
  input: SendInput,
  key: string | undefined,
  shape: (message: MessageRepresentation) => { status: 200 | 201; body: unknown },
): Promise<Response> {
  const config = c.get("config");
  // The body as it was sent, not as validated: another body under the same key is a conflict.
  const claim = key === undefined ? undefined : await keyClaim(`${c.get("apiKeyHash") ?? "shared"}:${c.req.method}:${c.get("route")}`, key, await c.req.json());
  const accepted = await acceptSend(c.get("deps"), config, input, { source, enqueue: !config.SYNC_MESSAGE_PROCESSING, key: claim, deadline: c.get("deadline"), apiKeyName: c.get("apiKeyName") });
  return answerSend(c, delivery(c), accepted, claim, shape);
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

export const MESSAGE_NOT_FOUND: ErrorDoc = {
  description: "No message has this id.",
  example: { error: "not_found", message: "Message not found" },
};

export const IDEMPOTENCY_CONFLICT: ErrorDoc = {
  description:
    "The Idempotency-Key was used before with another body, or its first request is still being processed (then with `Retry-After: 1`).",
  example: { error: "conflict", message: "Idempotency-Key was already used with a different request body" },
  headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
};

export const REPLAYED_HEADER = {
  "Idempotent-Replayed": {
    description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
    schema: { type: "string" as const, enum: ["true"] },
  },
};

export const SEND_VALIDATION_ERROR: ErrorDoc = {
  description:
    "The body is not JSON (path `body`), holds a NUL character, or breaks a field rule; the Idempotency-Key header is malformed; or `parent_id` names no message. `details` lists every issue.",
  example: {
    error: "validation_error",
    message: "Recipient must be a valid phone number for SMS/MMS",
    details: [{ path: "body.to", message: "Recipient must be a valid phone number for SMS/MMS" }],
  },
};

const SendRoute = defineRoute({
  method: "post",
  path: "/api/v1/messages/send",
  scope: "send",
  operationId: "sendMessage",
  summary: "Send an SMS, MMS or email",
  description:
    "Stores the message as `pending` in its conversation and queues it (one Postgres statement, one Redis command); the worker sends it. " +
    "With `send_at` it is stored `scheduled` and sent at that time (it can be canceled until then). " +
    "With SYNC_MESSAGE_PROCESSING the provider is called before answering and the message comes back `sent`, `retry` or `failed`.",
  tags: ["messages"],
  request: {
    headers: IdempotencyHeaders,
    body: {
      required: true,
      content: {
        "application/json": {
          schema: SendBody,
          examples: {
            sms: { summary: "SMS", value: { type: "sms", from: "+15551234567", to: "+15559876543", body: "Your code is 123456" } },
            mms: { summary: "MMS", value: { type: "mms", from: "+15551234567", to: "+15559876543", attachments: ["https://example.com/image.jpg"] } },
            email: { summary: "Email", value: { type: "email", from: "sender@example.com", to: "recipient@example.com", body: "<p>Hello</p>", metadata: { subject: "Welcome" } } },
          },
        },
      },
    },
  },
  responses: {
    201: {
      description: "Stored (and queued, or sent inline in sync mode).",
      headers: REPLAYED_HEADER,
      content: { "application/json": { schema: Message, example: MESSAGE_EXAMPLE } },
    },
  },
  errors: { 409: IDEMPOTENCY_CONFLICT, 422: SEND_VALIDATION_ERROR },
});

const ListRoute = defineRoute({
  method: "get",
  path: "/api/v1/messages",
  scope: "read",
  operationId: "listMessages",
  summary: "List messages, newest first",
  tags: ["messages"],
  request: { query: MessageListQuery },
  responses: { 200: { description: "A page of messages and the total.", content: { "application/json": { schema: MessageList } } } },
});

const GetRoute = defineRoute({
  method: "get",
  path: "/api/v1/messages/{message_id}",
  scope: "read",
  operationId: "getMessage",
  summary: "Get a message",
  tags: ["messages"],
  request: { params: MessageIdParams },
  responses: { 200: { description: "The message.", content: { "application/json": { schema: Message } } } },
  errors: { 404: MESSAGE_NOT_FOUND },
});

const EventsRoute = defineRoute({
  method: "get",
  path: "/api/v1/messages/{message_id}/events",
  scope: "read",
  operationId: "listMessageEvents",
  summary: "A message's timeline, oldest first",
  tags: ["messages"],
  request: { params: MessageIdParams, query: EventListQuery },
  responses: { 200: { description: "A page of the message's events.", content: { "application/json": { schema: EventList } } } },
  errors: { 404: MESSAGE_NOT_FOUND },
});

const StatusRoute = defineRoute({
  method: "patch",
  path: "/api/v1/messages/{message_id}/status",
  scope: "ops",
  operationId: "updateMessageStatus",
  summary: "Move a message's status forward",
  description:
    "Statuses only move forward (pending → queued → sending → sent → delivered, or to a failure); the same status again changes only metadata. " +
    "A message moved to `retry` is due at once and goes back on its queue.",
  tags: ["messages"],
  request: {
    params: MessageIdParams,
    body: { required: true, content: { "application/json": { schema: StatusPatchBody, example: { status: "delivered", metadata: { provider_response: "ok" } } } } },
  },
  responses: { 200: { description: "The updated message.", content: { "application/json": { schema: Message } } } },
  errors: {
    404: MESSAGE_NOT_FOUND,
    409: {
      description: "The move goes backwards; nothing changed.",
      details: z.object({ from: z.enum(MESSAGE_STATUSES), to: z.enum(MESSAGE_STATUSES) }),
      example: { error: "invalid_transition", message: "Cannot change status from delivered to sent", details: { from: "delivered", to: "sent" } },
    },
  },
});

const RetryRoute = defineRoute({
  method: "post",
  path: "/api/v1/messages/{message_id}/retry",
  scope: "send",
  operationId: "retryMessage",
  summary: "Send a failed message again",
  description: "Back to `pending` with attempts and error cleared, and queued (or sent inline in sync mode). No request body.",
  tags: ["messages"],
  request: { params: MessageIdParams },
  responses: { 200: { description: "The message, pending again.", content: { "application/json": { schema: Message } } } },
  errors: {
    400: { description: "Only a `failed` or `retry` message can be retried.", example: { error: "bad_request", message: "Cannot retry message with status: pending" } },
    404: MESSAGE_NOT_FOUND,
  },
});

const CancelRoute = defineRoute({
  scope: "send",
  method: "post",
  path: "/api/v1/messages/{message_id}/cancel",
  operationId: "cancelMessage",
  summary: "Cancel a message not yet sent",
  description:
    "Moves a `scheduled`, `pending`, `queued` or `retry` message the worker has not claimed to `canceled`, which is final: it is never sent, " +
    "even if its queue entry or schedule fires later. `canceled` is recorded on its timeline. No request body.",
  tags: ["messages"],
  request: { params: MessageIdParams },
  responses: { 200: { description: "The message, canceled.", content: { "application/json": { schema: Message } } } },
  errors: {
    404: MESSAGE_NOT_FOUND,
    409: {
      description:
        "The message is already being sent, was sent, failed, was canceled, is inbound, or its last attempt may have reached the provider; nothing changed. `details.status` is its status now.",
      details: z.object({ status: z.enum(MESSAGE_STATUSES) }),
      example: { error: "not_cancelable", message: "Cannot cancel message with status: sent", details: { status: "sent" } },
    },
  },
});

export function registerMessageRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(SendRoute, (c) =>
    sendFromRequest(c, "api", c.req.valid("json"), c.req.valid("header")["Idempotency-Key"], (message) => ({ status: 201, body: message })),
  );

  app.openapi(ListRoute, async (c) => {
    const { conversation_id, parent_id, status, direction, type, to, from, limit, offset } = c.req.valid("query");
    const { created_after: createdAfter, created_before: createdBefore } = c.req.valid("query");
    const filters = { conversationId: conversation_id, parentId: parent_id, status, direction, type, to, from, createdAfter, createdBefore };
    return c.json(await listMessages(c.get("deps"), filters, { limit, offset }, LIST_TOTAL_CAP), 200);
  });

  app.openapi(GetRoute, async (c) => c.json(await getMessage(c.get("deps"), c.req.valid("param").message_id), 200));

  app.openapi(EventsRoute, async (c) => c.json(await listEvents(c.get("deps"), c.req.valid("param").message_id, c.req.valid("query")), 200));

  app.openapi(StatusRoute, async (c) => {
    const { status, metadata } = c.req.valid("json");
    const message = await changeStatus(c.get("deps"), c.req.valid("param").message_id, status, metadata);
    runAfterResponse(c, ringWebhookWorker(c.env));
    // A message moved to retry is due now: back on its stream, so that the worker sees it.
    if (message.status === "retry") return c.json(await deliverAgain(delivery(c), message, null), 200);
    return c.json(message, 200);
  });

  app.openapi(CancelRoute, async (c) => {
    const result = await cancelMessage(c.get("deps"), c.req.valid("param").message_id);
    if (result.kind === "refused") throw notCancelable(result.status, result.reason);
    await onMessageCanceled(c.get("deps"), result.message);
    return c.json(result.message, 200);
  });

  app.openapi(RetryRoute, async (c) => {
    const id = c.req.valid("param").message_id;
    const result = await resetForRetry(c.get("deps"), id, "retry_request", !c.get("config").SYNC_MESSAGE_PROCESSING, c.get("apiKeyName"));
    if (!result) throw messageNotFound();
    if ("status" in result) throw cannotRetry(result.status);
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember), 200);
  });
}
