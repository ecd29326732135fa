// The OpenAPI 3.1 document (/openapi.json), generated from the routes' own declarations: every
// route is a createRoute() whose zod schemas are also what validates its requests. This module adds
// what the routes share: the error envelope, the answers the middleware gives before a handler runs
// (derived from the route's policy, exactly as the middleware derives them), and the document's
// header. /docs is the interactive reference.
import { createRoute, type OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { AppEnv } from "./http/context";
import { MAX_BODY_BYTES, MAX_EVENT_BATCH_BYTES, MAX_INBOUND_PARSE_BYTES } from "./http/body";
import { policyFor } from "./http/policy";
import { DOCS_CSP } from "./assets";
import { SCOPES, type Scope } from "./http/scopes";

const FieldIssue = z.object({ path: z.string().openapi({ example: "body.to" }), message: z.string() });

const envelope = {
  error: z.string().openapi({ description: "A stable code: validation_error, not_found, conflict, rate_limited, ...", example: "not_found" }),
  message: z.string().openapi({ description: "For people; for a validation error, the first issue's message." }),
};

export const ErrorEnvelope = z
  .object({
    ...envelope,
    details: z
      .union([z.array(FieldIssue), z.record(z.string(), z.unknown())])
      .nullable()
      .openapi({ description: "null, the issues of a 400 or 422 (`path` as `body.to`, `query.limit`, `path.message_id`, `header.idempotency-key`), or an object." }),
  })
  .openapi("Error", { example: { error: "not_found", message: "The requested resource was not found", details: null } });

const InsufficientScopeError = z
  .object({ ...envelope, details: z.object({ required_scope: z.enum(SCOPES) }) })
  .openapi("InsufficientScopeError");

const ref = (kind: "responses" | "headers", name: string) => ({ $ref: `#/components/${kind}/${name}` });

const CORRELATION = { "X-Correlation-Id": ref("headers", "CorrelationId") };
const RATE_LIMIT = {
  "X-RateLimit-Limit": ref("headers", "RateLimitLimit"),
  "X-RateLimit-Remaining": ref("headers", "RateLimitRemaining"),
  "X-RateLimit-Reset": ref("headers", "RateLimitReset"),
};

const errorBody = (doc: ErrorDoc) => ({
  "application/json": {
    schema: doc.details ? z.object({ ...envelope, details: doc.details }) : ErrorEnvelope,
    example: { details: null, ...doc.example },
  },
});

/** The same answer on every route that can give it. */
function sharedErrors() {
  const response = (description: string, example: { error: string; message: string }, headers: Record<string, { $ref: string }> = {}) => ({
    description,
    headers: { ...CORRELATION, ...headers },
    content: {
      "application/json": { schema: { $ref: "#/components/schemas/Error" }, example: { ...example, details: null } },
    },
  });
  return {
    Unauthorized: response(
      "No valid `Authorization: Bearer <key>` (outside development without API_KEYS, every protected route answers this).",
      { error: "unauthorized", message: "Missing or invalid API key" },
      { "WWW-Authenticate": ref("headers", "WwwAuthenticate") },
    ),
    InsufficientScope: {
      description: "The API key is valid but lacks the scope this route needs; `details.required_scope` names it.",
      headers: { ...CORRELATION },
      content: {
        "application/json": {
          schema: { $ref: "#/components/schemas/InsufficientScopeError" },
          example: { error: "insufficient_scope", message: "This API key lacks the ops scope", details: { required_scope: "ops" } },
        },
      },
    },
    MethodNotAllowed: response(
      "The path exists but does not take this method; `Allow` lists those it takes. Answered before authentication.",
      { error: "method_not_allowed", message: "Method DELETE is not allowed for this route" },
      { Allow: ref("headers", "Allow") },
    ),
    PayloadTooLarge: response(`The body is larger than ${MAX_BODY_BYTES} bytes (SendGrid webhooks: ${MAX_EVENT_BATCH_BYTES} for an Event Webhook batch, ${MAX_INBOUND_PARSE_BYTES} for an Inbound Parse post).`, {
      error: "payload_too_large",
      message: `Request body must be at most ${MAX_BODY_BYTES} bytes`,
    }),
    UnsupportedMediaType: response("The Content-Type is not one the route reads.", {
      error: "unsupported_media_type",
      message: "Content-Type must be application/json",
    }),
    TooManyRequests: response(
      "The client's sliding window for this route is used up (per API key, else per address).",
      { error: "rate_limited", message: "Too many requests. Please try again later." },
      { "Retry-After": ref("headers", "RetryAfter"), ...RATE_LIMIT },
    ),
    InternalError: response("An unexpected error, or an invalid configuration (every route then answers this).", {
      error: "internal_error",
      message: "An unexpected error occurred",
    }),
    ServiceUnavailable: response("Postgres or Redis did not answer in time. Nothing was changed unless the message says otherwise; retry later.", {
      error: "service_unavailable",
      message: "Database is unavailable",
    }),
  };
}

type OwnStatus = 400 | 403 | 404 | 409 | 422 | 503;

export interface ErrorDoc {
  description: string;
  example: { error: string; message: string; details?: unknown };
  headers?: Record<string, unknown>;
  /** the schema of `details` when the route says more than the envelope does */
  details?: z.ZodType;
}

const VALIDATION_ERROR: ErrorDoc = {
  description: "A request field breaks its schema's rules; `details` lists every issue in the request's field order.",
  example: { error: "validation_error", message: "Invalid UUID", details: [{ path: "path.message_id", message: "Invalid UUID" }] },
};

type RouteInput = Omit<RouteConfig, "responses" | "security"> & {
  operationId: string;
  summary: string;
  tags: [string];
  responses: RouteConfig["responses"];
  /** the answers only this route gives, beyond those of its policy */
  errors?: Partial<Record<OwnStatus, ErrorDoc>>;
  /** webhooks: the signatures that authenticate the delivery */
  security?: RouteConfig["security"];
  /** false for routes that answer without Postgres or Redis (no 503) */
  dependencies?: boolean;
  /**
   * the scope an API key needs (src/http/scopes.ts), enforced by the middleware from this
   * declaration; required on every route that takes a key, refused on any other
   */
  scope?: Scope;
};

/** The OpenAPI extension that carries a route's scope; the middleware reads it from the registry. */
export const SCOPE_EXTENSION = "x-required-scope";

/**
 * A route with everything its policy implies (src/http/policy.ts, which the middleware follows):
 * bearer security, 401, 429 and the rate-limit headers, 413/415 for bodies, 422 for validated
 * requests, 405 with Allow and 500 everywhere, 503 where Postgres or Redis are used, and
 * X-Correlation-Id on every answer.
 */
export function defineRoute<R extends RouteInput>(input: R) {
  const { errors = {}, dependencies = true, scope, ...route } = input;
  const policy = policyFor(route.method, route.path);
  // A route that takes a key without saying which scope would be open to every key: fail at load.
  if (policy.auth !== (scope !== undefined)) {
    throw new Error(`${route.method.toUpperCase()} ${route.path}: ${policy.auth ? "declare the API key scope it needs" : "takes no API key, so no scope"}`);
  }
  const request = route.request;
  const validated = !policy.webhook && Boolean(request?.params || request?.query || request?.headers || request?.body);

  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    const headers = { ...CORRELATION, ...(policy.rateLimited ? RATE_LIMIT : {}), ...("headers" in response ? response.headers : {}) };
    responses[status] = { ...response, headers };
  }
  const own: Partial<Record<OwnStatus, ErrorDoc>> = { ...(validated ? { 422: VALIDATION_ERROR } : {}), ...errors };
  for (const [status, doc] of Object.entries(own)) {
    responses[status] = { description: doc.description, headers: { ...CORRELATION, ...doc.headers }, content: errorBody(doc) };
  }
  if (policy.auth) {
    responses[401] = ref("responses", "Unauthorized");
    responses[403] ??= ref("responses", "InsufficientScope");
  }
  responses[405] = ref("responses", "MethodNotAllowed");
  if (policy.jsonBody || policy.webhook) {
    responses[413] = ref("responses", "PayloadTooLarge");
    responses[415] = ref("responses", "UnsupportedMediaType");
  }
  if (policy.rateLimited) responses[429] = ref("responses", "TooManyRequests");
  responses[500] = ref("responses", "InternalError");
  if (dependencies) responses[503] ??= ref("responses", "ServiceUnavailable");

  // OpenAPI 3.1 lets a non-OAuth scheme list the roles it needs: the scope, for generated clients.
  const security: RouteConfig["security"] = route.security ?? (scope ? [{ bearerAuth: [scope] }] : []);
  const described = route.description as string | undefined;
  const description = scope ? `${described ? `${described}\n\n` : ""}Needs an API key with the \`${scope}\` scope.` : described;
  return createRoute({ ...route, description, security, responses: responses as RouteConfig["responses"], ...(scope ? { [SCOPE_EXTENSION]: scope } : {}) });
}

// ---------------------------------------------------------------------------------------------
// The document

const TAGS = [
  { name: "messages", description: "Send SMS, MMS and email; read messages and their timelines; move a status forward; retry." },
  { name: "conversations", description: "Conversations group the messages of a pair of participants (direct) or of a thread." },
  { name: "queue", description: "Queue statistics, dead letters and redrive." },
  { name: "suppressions", description: "Recipients a send must not reach: SMS opt-outs (STOP) and email bounces, drops, spam reports and unsubscribes." },
  { name: "webhooks", description: "Provider callbacks: inbound messages and delivery status from Twilio and SendGrid, signed by the provider." },
  {
    name: "webhook-endpoints",
    description: "Status webhooks to the API user (Standard Webhooks): endpoints, their signing secrets, the events sent and their redelivery.",
  },
  { name: "legacy", description: "The pre-v1 routes and answer shapes, over the same services." },
  { name: "ops", description: "Probes, metrics and this document. No authentication." },
];

function registerComponents(app: OpenAPIHono<AppEnv>) {
  const registry = app.openAPIRegistry;
  registry.register("Error", ErrorEnvelope);
  registry.register("InsufficientScopeError", InsufficientScopeError);
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description:
      "One of the keys in API_KEYS. A key has scopes: `send` (send, retry, cancel, conversation changes), `read` (messages, conversations, timelines), " +
      "`ops` (queues, dead letters, redrive, operator routes and the console; includes `read`) and `admin` (everything); each operation names the one it needs. " +
      "In development without API_KEYS no key is needed.",
  });
  registry.registerComponent("securitySchemes", "twilioSignature", {
    type: "apiKey",
    in: "header",
    name: "X-Twilio-Signature",
    description:
      "Base64 HMAC-SHA1, keyed with TWILIO_AUTH_TOKEN, of the public URL (PUBLIC_BASE_URL + path and query) followed by the form fields sorted by name, " +
      "or, for a JSON body, of the URL with `bodySHA256` = hex SHA-256 of the body. Required whenever TWILIO_AUTH_TOKEN is set, and always outside development.",
  });
  registry.registerComponent("securitySchemes", "sendgridSignature", {
    type: "apiKey",
    in: "header",
    name: "X-Twilio-Email-Event-Webhook-Signature",
    description:
      "Base64 ECDSA P-256 (SHA-256) signature of the timestamp header followed by the raw body, checked with SENDGRID_WEBHOOK_PUBLIC_KEY " +
      "(Event Webhook) or SENDGRID_PARSE_PUBLIC_KEY (Inbound Parse). Required whenever that key is set, and always outside development.",
  });
  registry.registerComponent("securitySchemes", "sendgridTimestamp", {
    type: "apiKey",
    in: "header",
    name: "X-Twilio-Email-Event-Webhook-Timestamp",
    description: "The timestamp SendGrid signed together with the body.",
  });
  const header = (description: string, schema: object) => ({ description, schema });
  const headers = {
    CorrelationId: header("The request's X-Correlation-Id when it was 1-128 of `A-Za-z0-9._-`, else a new UUID.", { type: "string", example: "req-7f3a" }),
    RateLimitLimit: header("Requests allowed per window (RATE_LIMIT_REQUESTS).", { type: "integer", example: 100 }),
    RateLimitRemaining: header("Requests left in the current window.", { type: "integer", example: 99 }),
    RateLimitReset: header("Seconds until the window frees up.", { type: "integer", example: 60 }),
    RetryAfter: header("Seconds to wait before trying again.", { type: "integer", example: 1 }),
    Allow: header("The methods the path takes.", { type: "string", example: "GET" }),
    WwwAuthenticate: header("Always `Bearer`.", { type: "string", example: "Bearer" }),
  };
  for (const [name, value] of Object.entries(headers)) registry.registerComponent("headers", name, value);
  for (const [name, value] of Object.entries(sharedErrors())) registry.registerComponent("responses", name, value);
}

const documents = new WeakMap<object, unknown>();

/** The document of the app's routes, generated once per app. */
export function openApiDocument(app: OpenAPIHono<AppEnv>) {
  let document = documents.get(app);
  if (!document) {
    document = app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "Messaging Service",
        version: "1.0.0",
        description:
          "Send SMS, MMS and email through Twilio and SendGrid; receive their webhooks; conversations. Every error answer is the `Error` envelope. " +
          "Requests go through, in this order: route match (404, then 405), CORS preflight, rate limit (429), API key (401), body size (413), " +
          "content type (415), JSON parsing (422 on `body`), then each field's rules (422).",
        contact: { name: "Messaging Service maintainers" },
        // OpenAPI 3.1 names a license by SPDX identifier; the generator's types predate the field.
        license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" } as { name: string },
      },
      servers: [{ url: "/", description: "The service that serves this document" }],
      tags: TAGS,
    });
    documents.set(app, document);
  }
  return document;
}

const OpenApiRoute = defineRoute({
  method: "get",
  path: "/openapi.json",
  operationId: "getOpenApiDocument",
  summary: "This OpenAPI 3.1 document",
  tags: ["ops"],
  dependencies: false,
  responses: {
    200: {
      description: "The document, generated from the routes' declarations.",
      content: {
        "application/json": {
          schema: z.record(z.string(), z.unknown()).openapi({ description: "An OpenAPI 3.1 document." }),
          example: { openapi: "3.1.0", info: { title: "Messaging Service", version: "1.0.0" }, paths: {} },
        },
      },
    },
  },
});

export function registerOpenApi(app: OpenAPIHono<AppEnv>) {
  registerComponents(app);
  app.openapi(OpenApiRoute, (c) => c.json(openApiDocument(app) as Record<string, unknown>, 200));

  app.openAPIRegistry.registerPath(
    defineRoute({
      method: "get",
      path: "/docs",
      operationId: "getApiReference",
      summary: "Interactive API reference (HTML) over /openapi.json",
      tags: ["ops"],
      dependencies: false,
      responses: {
        200: {
          description: "An HTML page that loads /openapi.json.",
          content: { "text/html": { schema: z.string(), example: "<!doctype html>..." } },
        },
      },
    }),
  );
  // Swagger UI from the Worker's own static assets (dist-assets/docs, from swagger-ui-dist): it
  // works offline and under the same kind of strict Content-Security-Policy as the console.
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    return c.html(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Messaging Service API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/docs/favicon-32x32.png"><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<noscript><a href="/openapi.json">OpenAPI document</a></noscript>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`);
  });
}
