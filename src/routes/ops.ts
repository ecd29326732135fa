// Ops routes (docs/api.md): probes and service description. No auth.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { notFound, serviceUnavailable, unauthorized } from "../errors";
import { tokenMatches } from "../http/auth";
import { limitProbe } from "../http/probe-limit";
import { renderMetrics } from "../services/metrics";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { readiness } from "../services/health";
import { Dependencies, Health, Liveness, NOT_READY_EXAMPLE, NotReady, Readiness, ServiceInfo, Startup } from "./schemas";

const now = () => new Date().toISOString();

const json = (description: string, schema: z.ZodType) => ({ 200: { description, content: { "application/json": { schema } } } });

const RootRoute = defineRoute({
  method: "get",
  path: "/",
  operationId: "getServiceInfo",
  summary: "Service description",
  tags: ["ops"],
  dependencies: false,
  responses: json("Name, version and where the documentation is.", ServiceInfo),
});

const LiveRoute = defineRoute({
  method: "get",
  path: "/live",
  operationId: "getLiveness",
  summary: "Liveness: answers without touching any dependency",
  tags: ["ops"],
  dependencies: false,
  responses: json("Alive.", Liveness),
});

const HealthRoute = defineRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  summary: "Health: the Worker runs (touches no dependency; /ready checks them)",
  tags: ["ops"],
  dependencies: false,
  responses: json("Each dependency's check; the status sums them up.", Health),
});

const ReadyRoute = defineRoute({
  method: "get",
  path: "/ready",
  operationId: "getReadiness",
  summary: "Readiness: 503 while Postgres or Redis is down or a provider lacks credentials",
  tags: ["ops"],
  responses: json("Postgres and Redis answer.", Readiness),
  errors: {
    503: {
      description: "Postgres or Redis does not answer; `details` has every check.",
      details: NotReady,
      example: {
        error: "service_unavailable",
        message: "Not ready: redis unavailable",
        details: NOT_READY_EXAMPLE,
      },
    },
  },
});

const StartupRoute = defineRoute({
  method: "get",
  path: "/startup",
  operationId: "getStartup",
  summary: "Startup probe",
  tags: ["ops"],
  dependencies: false,
  responses: json("Started; which dependencies answered.", Startup),
});

const MetricsRoute = defineRoute({
  method: "get",
  path: "/metrics",
  operationId: "getMetrics",
  summary: "Prometheus metrics",
  tags: ["ops"],
  responses: {
    200: {
      description: "The Prometheus text format: request, message, queue and webhook counters.",
      content: {
        "text/plain; version=0.0.4; charset=utf-8": {
          schema: z.string(),
          example: '# TYPE queue_depth gauge\nqueue_depth{queue_name="sms"} 0\n',
        },
      },
    },
  },
  errors: { 404: { description: "Metrics are off (METRICS_ENABLED=false).", example: { error: "not_found", message: "The requested resource was not found" } } },
});

const DependenciesRoute = defineRoute({
  method: "get",
  path: "/dependencies",
  operationId: "getDependencies",
  summary: "Dependency status and latency",
  tags: ["ops"],
  dependencies: false,
  responses: json("Postgres, Redis and the providers.", Dependencies),
});

export function registerOpsRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(RootRoute, (c) => c.json({ name: "Messaging Service", version: "1.0.0", status: "operational", documentation: "/docs" }, 200));

  app.openapi(LiveRoute, (c) => c.json({ status: "alive", timestamp: now() }, 200));

  app.openapi(HealthRoute, (c) => c.json({ status: "healthy" as const, timestamp: now() }, 200));

  app.openapi(ReadyRoute, async (c) => {
    limitProbe(c);
    const { ready, reasons, checks } = await readiness(c.get("deps"), c.get("config"));
    if (!ready) throw serviceUnavailable(`Not ready: ${reasons.join("; ")}`, { ready: false, timestamp: now(), checks });
    return c.json({ ready: true as const, timestamp: now(), checks }, 200);
  });

  app.openapi(StartupRoute, async (c) => {
    limitProbe(c);
    const { checks } = await readiness(c.get("deps"), c.get("config"));
    return c.json(
      {
        started: true as const,
        timestamp: now(),
        initialization: {
          database_initialized: checks.database.status === "healthy",
          redis_initialized: checks.redis.status === "healthy",
          providers_initialized: Object.values(checks.providers).every((p) => p.status !== "not_configured"),
        },
      },
      200,
    );
  });

  app.openapi(MetricsRoute, async (c) => {
    const config = c.get("config");
    if (!config.METRICS_ENABLED) throw notFound();
    if (config.METRICS_TOKEN && !(await tokenMatches(c.req.header("authorization"), config.METRICS_TOKEN))) {
      throw unauthorized("A metrics token is required (Authorization: Bearer METRICS_TOKEN)");
    }
    const text = await renderMetrics(c.env, c.get("deps"));
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.openapi(DependenciesRoute, async (c) => {
    limitProbe(c);
    const { checks } = await readiness(c.get("deps"), c.get("config"));
    const provider = (name: "twilio" | "sendgrid", type: "sms" | "email") => ({ status: checks.providers[name].status, latency_ms: 0, type, mode: checks.providers[name].mode });
    return c.json(
      {
        timestamp: now(),
        dependencies: { postgresql: checks.database, redis: checks.redis, provider_twilio: provider("twilio", "sms"), provider_sendgrid: provider("sendgrid", "email") },
      },
      200,
    );
  });
}
