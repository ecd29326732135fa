// Ops routes (API-CONTRACT §8): probes and service description. No auth.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { configurationProblems } from "../config";
import { notFound, serviceUnavailable } from "../errors";
import { renderMetrics } from "../services/metrics";
import type { AppEnv } from "../http/context";
import { checkDatabase, checkRedis, providerChecks } from "../services/health";

const now = () => new Date().toISOString();

export function registerOpsRoutes(app: OpenAPIHono<AppEnv>) {
  app.get("/", (c) =>
    c.json({ name: "Messaging Service", version: "1.0.0", status: "operational", documentation: "/docs" }),
  );

  app.get("/live", (c) => c.json({ status: "alive", timestamp: now() }));

  app.get("/health", async (c) => {
    const deps = c.get("deps");
    const [database, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    const healthy = [database, redis].filter((check) => check.status === "healthy").length;
    const status = healthy === 2 ? "healthy" : healthy === 1 ? "degraded" : "unhealthy";
    return c.json({ status, timestamp: now(), checks: { database, redis } });
  });

  app.get("/ready", async (c) => {
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
    return c.json({ ready: true, timestamp: now(), checks });
  });

  app.get("/startup", async (c) => {
    const deps = c.get("deps");
    const [database, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    return c.json({
      started: true,
      timestamp: now(),
      initialization: {
        database_initialized: database.status === "healthy",
        redis_initialized: redis.status === "healthy",
        providers_initialized: true,
      },
    });
  });

  app.get("/metrics", async (c) => {
    if (!c.get("config").METRICS_ENABLED) throw notFound();
    const text = await renderMetrics(c.env, c.get("deps"));
    return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.get("/dependencies", async (c) => {
    const deps = c.get("deps");
    const [postgresql, redis] = await Promise.all([checkDatabase(deps), checkRedis(deps)]);
    const providers = providerChecks(c.get("config"));
    return c.json({
      timestamp: now(),
      dependencies: {
        postgresql,
        redis,
        provider_twilio: { status: providers.twilio.status, latency_ms: 0, type: "sms", mode: providers.twilio.mode },
        provider_sendgrid: { status: providers.sendgrid.status, latency_ms: 0, type: "email", mode: providers.sendgrid.mode },
      },
    });
  });
}
