// Queue routes (docs/api.md): stats, dead letters, redrive.
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
import { RedriveByCodeBody, RedriveByCodeResult } from "./console-schemas";
import { deadLettersWithCode } from "../services/insights";
import { log } from "../log";

const StatsRoute = defineRoute({
  method: "get",
  path: "/api/v1/queue/stats",
  scope: "ops",
  operationId: "getQueueStats",
  summary: "Queue depth, pending entries, retries, dead letters and worker health per message type",
  tags: ["queue"],
  responses: { 200: { description: "One Redis pipeline and one Postgres statement's worth of figures.", content: { "application/json": { schema: QueueStats } } } },
});

const DeadLettersRoute = defineRoute({
  method: "get",
  path: "/api/v1/queue/dead-letters",
  scope: "ops",
  operationId: "listDeadLetters",
  summary: "List dead letters, newest first",
  tags: ["queue"],
  request: { query: querySchema({ type: oneOf("type", MESSAGE_TYPES).optional(), ...pageQuery(100, 50) }) },
  responses: { 200: { description: "A page of dead letters and the total.", content: { "application/json": { schema: DeadLetterList } } } },
});

const RedriveRoute = defineRoute({
  method: "post",
  path: "/api/v1/queue/dead-letters/{message_id}/redrive",
  scope: "ops",
  operationId: "redriveDeadLetter",
  summary: "Send a dead-lettered message again",
  description: "Removes the dead letter and puts the message back to `pending`, queued (or sent inline in sync mode). No request body.",
  tags: ["queue"],
  request: { params: MessageIdParams },
  responses: { 200: { description: "The message, pending again.", content: { "application/json": { schema: Message } } } },
  errors: { 404: { description: "The message has no dead letter.", example: { error: "not_found", message: "Dead letter not found" } } },
});

const RedriveByCodeRoute = defineRoute({
  method: "post",
  path: "/api/v1/queue/dead-letters/redrive",
  operationId: "redriveDeadLettersByCode",
  summary: "Send every dead letter of an error code again",
  description:
    "Redrives up to `limit` dead letters with this error code, oldest first, one after another while the request's deadline allows; " +
    "`remaining` says how many are left, so call again until it is 0. Each is redriven as by its own redrive route.",
  tags: ["queue"],
  scope: "ops",
  request: { body: { required: true, content: { "application/json": { schema: RedriveByCodeBody, example: { code: "21211" } } } } },
  responses: { 200: { description: "What was redriven and what is left.", content: { "application/json": { schema: RedriveByCodeResult } } } },
});

/** Stop starting redrives this long before the deadline: each is a Postgres and a Redis round trip. */
const REDRIVE_RESERVE_MS = 1000;

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

  app.openapi(RedriveByCodeRoute, async (c) => {
    const { code, type, limit } = c.req.valid("json");
    const deps = c.get("deps");
    const { ids, total } = await deadLettersWithCode(deps, code, type, limit);
    const redriven: string[] = [];
    for (const id of ids) {
      if (c.get("deadline") - Date.now() < REDRIVE_RESERVE_MS) break;
      const result = await resetForRetry(deps, id, "redrive", !c.get("config").SYNC_MESSAGE_PROCESSING, c.get("apiKeyName"));
      if (!result || "status" in result) continue; // redriven meanwhile by someone else
      await deliverAgain(delivery(c), result.message, result.staleRetryMember);
      redriven.push(id);
    }
    const remaining = Math.max(0, total - redriven.length);
    log("info", "dead_letters_redriven", { request_id: c.get("requestId"), code, type, redriven: redriven.length, remaining });
    return c.json({ code, redriven, remaining }, 200);
  });

  app.openapi(RedriveRoute, async (c) => {
    const id = c.req.valid("param").message_id;
    const result = await resetForRetry(c.get("deps"), id, "redrive", !c.get("config").SYNC_MESSAGE_PROCESSING, c.get("apiKeyName"));
    if (!result || "status" in result) throw notFound("Dead letter not found");
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember), 200);
  });
}
