// Queue routes (API-CONTRACT §5): stats, dead letters, redrive.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { MESSAGE_TYPES } from "../db/schema";
import { notFound } from "../errors";
import type { AppEnv } from "../http/context";
import { deliverAgain } from "../services/delivery";
import { resetForRetry } from "../services/messages";
import { listDeadLetters, queueStats } from "../services/queue-stats";
import { checkUuidParam, enumQuery, Issues, parsePage } from "../validation/common";
import { delivery } from "./messages";

export function registerQueueRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/api/v1/queue/stats", async (c) => {
    const { sweep_heartbeat_age_seconds, ...stats } = await queueStats(c.get("deps"));
    const config = c.get("config");
    return c.json({
      ...stats,
      processing_mode: config.SYNC_MESSAGE_PROCESSING ? "sync" : "async",
      shards_per_type: config.SHARDS_PER_TYPE,
      sweep_heartbeat_age_seconds,
    });
  });

  app.get("/api/v1/queue/dead-letters", async (c) => {
    const query = c.req.query();
    const issues = new Issues();
    const type = enumQuery(query, "type", MESSAGE_TYPES, issues);
    const page = parsePage(query, issues, 100, 50);
    issues.throwIfAny();
    return c.json(await listDeadLetters(c.get("deps"), type, page));
  });

  app.post("/api/v1/queue/dead-letters/:message_id/redrive", async (c) => {
    const id = checkUuidParam(c.req.param("message_id"), "message_id");
    const result = await resetForRetry(c.get("deps"), id, "redrive", !c.get("config").SYNC_MESSAGE_PROCESSING);
    if (!result || "status" in result) throw notFound("Dead letter not found");
    return c.json(await deliverAgain(delivery(c), result.message, result.staleRetryMember));
  });
}
