// Ops routes (API-CONTRACT §8): probes and service description. No auth.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { configurationProblems } from "../config";
import { notFound, serviceUnavailable } from "../errors";
import { renderMetrics } from "../services/metrics";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { checkDatabase, checkRedis, providerChecks } from "../services/health";
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
  summary: "Health of Postgres and Redis (always 200)",
  tags: ["ops"],
  dependencies: false,
  responses: json("Each dependency's check; the status sums them up.", Health),
});

const ReadyRoute = defineRoute({
  method: "get",
  path: "/ready",
  operationId: "getReadiness",
  summary: "Readiness: 503 while Postgres or Redis is down",
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

  app.openapi(HealthRoute, async (c) => {
    const deps = c.get("deps");
    const [database, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    const healthy = [database, redis].filter((check) => check.status === "healthy").length;
    const status = healthy === 2 ? "healthy" : healthy === 1 ? "degraded" : "unhealthy";
    return c.json({ status, timestamp: now(), checks: { database, redis } }, 200);
  });

  app.openapi(ReadyRoute, async (c) => {
    const deps = c.get("deps");
    const [database, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    const problems = configurationProblems(c.get("config"));
    const configuration = { status: problems.length ? "degraded" : "healthy", problems };
    const checks = { database, redis, providers: providerChecks(c.get("config")), configuration };
    const ready = database.status === "healthy" && redis.status === "healthy";
    if (!ready) {
      const failed = [database.status !== "healthy" && "database", redis.status !== "healthy" && "redis"].filter(Boolean);
      throw serviceUnavailable(`Not ready: ${failed.join(" and ")} unavailable`, { ready: false, timestamp: now(), checks });
    }
    return c.json({ ready: true, timestamp: now(), checks }, 200);
  });

  app.openapi(StartupRoute, async (c) => {
    const deps = c.get("deps");
    const [database, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    return c.json(
      {
        started: true,
        timestamp: now(),
        initialization: {
          database_initialized: database.status === "healthy",
          redis_initialized: redis.status === "healthy",
          providers_initialized: true,
        },
      },
      200,
    );
  });

  app.openapi(MetricsRoute, async (c) => {
    if (!c.get("config").METRICS_ENABLED) throw notFound();
    const text = await renderMetrics(c.env, c.get("deps"));
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.openapi(DependenciesRoute, async (c) => {
    const deps = c.get("deps");
    const [postgresql, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    const providers = providerChecks(c.get("config"));
    return c.json(
      {
        timestamp: now(),
        dependencies: {
          postgresql,
          redis,
          provider_twilio: { status: providers.twilio.status, latency_ms: 0, type: "sms", mode: providers.twilio.mode },
          provider_sendgrid: { status: providers.sendgrid.status, latency_ms: 0, type: "email", mode: providers.sendgrid.mode },
        },
      },
      200,
    );
  });
}
