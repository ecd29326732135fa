// Operator insights (what the console at /console charts): throughput and latency per minute, and
// recent failures by error code, computed from Postgres with bounded cost (src/services/insights.ts).
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { failuresByCode, timeseries } from "../services/insights";
import { querySchema } from "../validation/common";
import { FailureGroups, Timeseries } from "./console-schemas";

const INTEGER = /^\d+$/;
const minutesQuery = (fallback: number, max: number) => {
  const message = `minutes must be an integer between 1 and ${max}`;
  return querySchema({
    minutes: z
      .preprocess((v) => (typeof v === "string" && INTEGER.test(v.trim()) ? Number(v) : v), z.int({ error: message }).min(1, message).max(max, message))
      .default(fallback)
      .openapi({ description: `The window, in minutes back from now (1-${max}).`, example: fallback }),
  });
};

const TimeseriesRoute = defineRoute({
  method: "get",
  path: "/api/v1/ops/timeseries",
  operationId: "getTimeseries",
  summary: "Throughput and latency per minute",
  description:
    "Per minute of the window: outbound messages created, sent and failed (by their creation minute), inbound received, and the p50/p95 " +
    "time from creation to `sent`. One statement over an index, reading at most 50,000 messages (`truncated` when it had to stop).",
  tags: ["queue"],
  scope: "ops",
  request: { query: minutesQuery(60, 180) },
  responses: { 200: { description: "One point per minute, oldest first.", content: { "application/json": { schema: Timeseries } } } },
});

const FailuresRoute = defineRoute({
  method: "get",
  path: "/api/v1/ops/failures",
  operationId: "getFailuresByCode",
  summary: "Recent failures grouped by error code",
  description:
    "Messages that failed in the window, grouped by provider error code (the latest message and class of each), with each code's current dead letters; " +
    "most frequent first, at most 100 codes. Reads at most 50,000 failures (`truncated` when it had to stop).",
  tags: ["queue"],
  scope: "ops",
  request: { query: minutesQuery(60, 1440) },
  responses: { 200: { description: "The codes, most frequent first.", content: { "application/json": { schema: FailureGroups } } } },
});

export function registerInsightRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(TimeseriesRoute, async (c) => c.json(await timeseries(c.get("deps"), c.req.valid("query").minutes), 200));
  app.openapi(FailuresRoute, async (c) => c.json(await failuresByCode(c.get("deps"), c.req.valid("query").minutes), 200));
}
