// The Hono app: the contract's processing order (§1.2) as middleware, one error envelope, and the
// route modules mounted on it.
import { OpenAPIHono } from "@hono/zod-openapi";
import { contextStorage } from "hono/context-storage";
import { cors } from "hono/cors";
import type { Context, MiddlewareHandler } from "hono";
import { ConfigError, configurationProblems, loadConfig, type Config } from "./config";
import { AppError, DependencyError, INTERNAL_ERROR_BODY, notFound } from "./errors";
import { runAfterResponse, type AppEnv } from "./http/context";
import { createDeps } from "./deps";
import { RouteTable } from "./http/routes";
import { policyFor } from "./http/policy";
import { authenticate } from "./http/auth";
import { rateLimit } from "./http/rate-limit";
import { enforceBodyRules } from "./http/body";
import { errorFields, log } from "./log";
import { registerOpsRoutes } from "./routes/ops";
import { registerMessageRoutes } from "./routes/messages";
import { registerConversationRoutes } from "./routes/conversations";
import { registerLegacyRoutes } from "./routes/legacy";
import { registerWebhookRoutes } from "./routes/webhooks";
import { registerQueueRoutes } from "./routes/queue";
import { registerInsightRoutes } from "./routes/insights";
import { registerWebhookEndpointRoutes } from "./routes/webhook-endpoints";
import { registerOpenApi, SCOPE_EXTENSION } from "./openapi";
import type { Scope } from "./http/scopes";
import { registerSuppressionRoutes } from "./routes/suppressions";
import { registerAttachmentRoutes } from "./routes/attachments";
import { flushSamples, recordRequest } from "./services/metrics";
import { rejectInvalid } from "./validation/common";

const CORRELATION_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** The backstop fires this long after the deadline, so that a route bounded by it answers first. */
const DEADLINE_GRACE_MS = 250;

const deadlineExceeded = () =>
  new AppError(503, "service_unavailable", "The request did not finish within its deadline; retry shortly", null, { "Retry-After": "1" });

export function errorResponse(c: Context, error: unknown): Response {
  if (error instanceof AppError) {
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    return c.json(error.toBody(), error.status as 400);
  }
  const requestId = c.get("requestId" as never) as string | undefined;
  if (error instanceof DependencyError) {
    log("error", "dependency_unavailable", { request_id: requestId, dependency: error.dependency, ...errorFields(error) });
    const message = error.dependency === "database" ? "Database is unavailable" : "Redis is unavailable";
    c.header("Retry-After", "1");
    return c.json({ error: "service_unavailable", message, details: null }, 503);
  }
  log("error", "unhandled_error", { request_id: requestId, ...errorFields(error), stack: error instanceof Error ? error.stack : undefined });
  return c.json(INTERNAL_ERROR_BODY, 500);
}

const reported = new WeakSet<Config>();

/** Logs missing or unsafe production settings once per isolate and configuration. */
function reportConfiguration(config: Config) {
  if (reported.has(config)) return;
  reported.add(config);
  const problems = configurationProblems(config);
  if (problems.length) log("warn", "configuration_problems", { environment: config.ENVIRONMENT, problems });
}

const corsHandlers = new WeakMap<Config, MiddlewareHandler>();

function corsFor(config: Config): MiddlewareHandler {
  let handler = corsHandlers.get(config);
  if (!handler) {
    handler = cors({
      origin: config.CORS_ORIGINS,
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Correlation-Id"],
      exposeHeaders: ["X-Correlation-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Idempotent-Replayed"],
      maxAge: 600,
    });
    corsHandlers.set(config, handler);
  }
  return handler;
}


export function createApp() {
  // Every route validates its request with its own schemas; a part that fails them is a 422.
  const app = new OpenAPIHono<AppEnv>({ strict: false, defaultHook: rejectInvalid });
  const routes = new RouteTable();
  /** "METHOD template" to the scope its defineRoute declared, filled from the OpenAPI registry */
  const scopes = new Map<string, Scope>();

  // The request's context for the schemas that need its configuration (the phone region).
  app.use("*", contextStorage());

  // Request id first, so that every answer (errors included) carries it.
  app.use("*", async (c, next) => {
    const incoming = c.req.header("x-correlation-id");
    const requestId = incoming && CORRELATION_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("route", "unmatched");
    const started = performance.now();
    await next();
    recordRequest(c.req.method, c.get("route"), c.res.status, (performance.now() - started) / 1000);
    runAfterResponse(c, flushSamples(c.env).catch((error: unknown) => log("warn", "metrics_flush_failed", errorFields(error))));
    c.header("X-Correlation-Id", requestId);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Frame-Options", "DENY");
  });

  app.use("*", async (c, next) => {
    try {
      c.set("config", loadConfig(c.env));
    } catch (error) {
      if (error instanceof ConfigError) {
        log("error", "invalid_configuration", { problems: error.problems });
        return c.json(INTERNAL_ERROR_BODY, 500);
      }
      throw error;
    }
    const config = c.get("config");
    reportConfiguration(config);
    // Every dependency call is bounded by what is left of the deadline; the race below is the
    // backstop for anything else that could hang (a Durable Object RPC, a body that never ends).
    const deadline = Date.now() + config.REQUEST_DEADLINE_MS;
    c.set("deadline", deadline);
    const deps = createDeps(config, deadline);
    c.set("deps", deps);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(deadlineExceeded()), deadline + DEADLINE_GRACE_MS - Date.now());
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      runAfterResponse(c, deps.close());
    }
  });

  // Preflights are answered here: before route matching, auth and rate limiting (§1.1).
  app.use("*", (c, next) => corsFor(c.get("config"))(c, next));

  // Route match (404 / 405) before anything else that could answer.
  app.use("*", async (c, next) => {
    const path = c.req.path;
    const matched = routes.match(c.req.method, path);
    if (!matched) throw notFound();
    if ("allow" in matched) {
      throw new AppError(405, "method_not_allowed", `Method ${c.req.method} is not allowed for this route`, null, { Allow: matched.allow.join(", ") });
    }
    c.set("route", matched.template);
    const policy = policyFor(c.req.method, matched.template);
    if (policy.rateLimited) await rateLimit(c);
    if (policy.auth) await authenticate(c, scopes.get(`${c.req.method === "HEAD" ? "GET" : c.req.method} ${matched.template}`) ?? "admin");
    await enforceBodyRules(c, policy);
    await next();
  });

  registerOpsRoutes(app);
  registerMessageRoutes(app);
  registerConversationRoutes(app);
  registerLegacyRoutes(app);
  registerQueueRoutes(app);
  registerInsightRoutes(app);
  registerSuppressionRoutes(app);
  registerAttachmentRoutes(app);
  registerWebhookRoutes(app);
  registerWebhookEndpointRoutes(app);
  registerOpenApi(app);

  // A route's validators and handler are separate entries of app.routes: each route counts once.
  const served = new Set(app.routes.filter((route) => route.method !== "ALL").map((route) => `${route.method} ${route.path}`));
  for (const route of served) {
    const [method, path] = route.split(" ") as [string, string];
    routes.add(method, path.replace(/:([A-Za-z0-9_]+)/g, "{$1}"));
  }

  // The scope of each route is read from what its definition declared, the same record that the
  // OpenAPI document is built from; a protected route without one would need `admin` (fail closed).
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== "route") continue;
    const scope = (definition.route as unknown as Record<string, unknown>)[SCOPE_EXTENSION] as Scope | undefined;
    if (scope) scopes.set(`${definition.route.method.toUpperCase()} ${definition.route.path}`, scope);
  }

  app.notFound(() => {
    throw notFound();
  });
  app.onError((error, c) => errorResponse(c, error));
  return app;
}
