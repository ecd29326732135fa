// Queue routes (API-CONTRACT §5): stats, dead letters, redrive.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { MESSAGE_TYPES } from "../db/schema";
import { notFound } from "../errors";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { deliverAgain } from "../services/delivery";
import { resetForRetry } from "../services/messages";
import { listDeadLetters, queueStats } from "../services/queue-stats";
import { oneOf, pageQuery, querySchema } from "../validation/common";
import { MessageIdParams } from "../validation/messages";
import { delivery } from "./messages";
import { DeadLetterList, Message, QueueStats } from "./schemas";

const StatsRoute = defineRoute({
  method: "get",
  path: "/api/v1/queue/stats",
  operationId: "getQueueStats",
  summary: "Queue depth, pending entries, retries, dead letters and worker health per message type",
  tags: ["queue"],
  responses: { 200: { description: "One Redis pipeline and one Postgres statement's worth of figures.", content: { "application/json": { schema: QueueStats } } } },
});

const DeadLettersRoute = defineRoute({
  method: "get",
  path: "/api/v1/queue/dead-letters",
  operationId: "listDeadLetters",
  summary: "List dead letters, newest first",
  tags: ["queue"],
  request: { query: querySchema({ type: oneOf("type", MESSAGE_TYPES).optional(), ...pageQuery(100, 50) }) },
  responses: { 200: { description: "A page of dead letters and the total.", content: { "application/json": { schema: DeadLetterList } } } },
});

const RedriveRoute = defineRoute({
  method: "post",
  path: "/api/v1/queue/dead-letters/{message_id}/redrive",
  operationId: "redriveDeadLetter",
  summary: "Send a dead-lettered message again",
  description: "Removes the dead letter and puts the message back to `pending`, queued (or sent inline in sync mode). No request body.",
  tags: ["queue"],
  request: { params: MessageIdParams },
  responses: { 200: { description: "The message, pending again.", content: { "application/json": { schema: Message } } } },
  errors: { 404: { description: "The message has no dead letter.", example: { error: "not_found", message: "Dead letter not found" } } },
});

export function registerQueueRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(StatsRoute, async (c) => {
    const { sweep_heartbeat_age_seconds, ...stats } = await queueStats(c.get("deps"));
    const config = c.get("config");
    return c.json(
      {
        ...stats,
        processing_mode: config.SYNC_MESSAGE_PROCESSING ? "sync" : "async",
        shards_per_type: config.SHARDS_PER_TYPE,
        sweep_heartbeat_age_seconds,
      },
      200,
    );
  });

  app.openapi(DeadLettersRoute, async (c) => {
    const { type, limit, offset } = c.req.valid("query");
    return c.json(await listDeadLetters(c.get("deps"), type, { limit, offset }), 200);
  });

  app.openapi(RedriveRoute, async (c) => {
    const id = c.req.valid("param").message_id;
    const result = await resetForRetry(c.get("deps"), id, "redrive", !c.get("config").SYNC_MESSAGE_PROCESSING);
    if (!result || "status" in result) throw notFound("Dead letter not found");
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember), 200);
  });
}
