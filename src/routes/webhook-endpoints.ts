// Status webhooks to the API user (Standard Webhooks): endpoint CRUD, secret rotation, the events
// and their redelivery. Thin handlers over src/services/webhook-endpoints.ts and outbound-webhooks.ts.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { runAfterResponse, type AppEnv } from "../http/context";
import { defineRoute, type ErrorDoc } from "../openapi";
import { listWebhookEvents, redeliver, ringWebhookWorker } from "../services/outbound-webhooks";
import { createEndpoint, deleteEndpoint, getEndpoint, listEndpoints, rotateSecret, updateEndpoint } from "../services/webhook-endpoints";
import {
  CreateEndpointBody,
  EndpointIdParams,
  EndpointListQuery,
  ENDPOINT_EXAMPLE,
  PatchEndpointBody,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
  WebhookEvent,
  WebhookEventIdParams,
  WebhookEventList,
  WebhookEventListQuery,
} from "../validation/webhook-endpoints";

const TAG: [string] = ["webhook-endpoints"];

const ENDPOINT_NOT_FOUND: ErrorDoc = {
  description: "No webhook endpoint has this id.",
  example: { error: "not_found", message: "Webhook endpoint not found" },
};

const URL_REFUSED =
  "A field breaks its rules, or the URL may not receive webhooks here (outside development: not https, localhost, a private or link-local address).";

const json = <T>(schema: T, description: string, example?: unknown) => ({
  description,
  content: { "application/json": { schema, ...(example === undefined ? {} : { example }) } },
});

const CreateRoute = defineRoute({
  scope: "ops",
  method: "post",
  path: "/api/v1/webhook-endpoints",
  operationId: "createWebhookEndpoint",
  summary: "Register a webhook endpoint; its signing secret is shown once",
  description:
    "Status webhooks follow the Standard Webhooks specification: `POST` with `webhook-id` (the same on every retry of an event), " +
    "`webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256, keyed with the base64-decoded part of the secret, " +
    "of `{webhook-id}.{webhook-timestamp}.{body}`). The body is `{type, timestamp, data}`, `data` being the message as the API returns it " +
    "plus `sequence`, which grows with each event of a message. Any 2xx answer within 10 s is a delivery; otherwise the event is retried " +
    "after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (WEBHOOK_RETRY_SCHEDULE), then given up.",
  tags: TAG,
  request: { body: { required: true, content: { "application/json": { schema: CreateEndpointBody } } } },
  responses: { 201: json(WebhookEndpointWithSecret, "The endpoint, with its secret (shown only here and on rotation).") },
  errors: { 422: { description: URL_REFUSED, example: { error: "validation_error", message: "URL must use https", details: [{ path: "body.url", message: "URL must use https" }] } } },
});

const ListRoute = defineRoute({
  scope: "ops",
  method: "get",
  path: "/api/v1/webhook-endpoints",
  operationId: "listWebhookEndpoints",
  summary: "List webhook endpoints, newest first",
  tags: TAG,
  request: { query: EndpointListQuery },
  responses: { 200: json(WebhookEndpointList, "A page of endpoints and the total.") },
});

const GetRoute = defineRoute({
  scope: "ops",
  method: "get",
  path: "/api/v1/webhook-endpoints/{endpoint_id}",
  operationId: "getWebhookEndpoint",
  summary: "Get a webhook endpoint",
  tags: TAG,
  request: { params: EndpointIdParams },
  responses: { 200: json(WebhookEndpoint, "The endpoint (never its secret).", ENDPOINT_EXAMPLE) },
  errors: { 404: ENDPOINT_NOT_FOUND },
});

const PatchRoute = defineRoute({
  scope: "ops",
  method: "patch",
  path: "/api/v1/webhook-endpoints/{endpoint_id}",
  operationId: "updateWebhookEndpoint",
  summary: "Change an endpoint's URL, events or description; enable or disable it",
  tags: TAG,
  request: { params: EndpointIdParams, body: { required: true, content: { "application/json": { schema: PatchEndpointBody } } } },
  responses: { 200: json(WebhookEndpoint, "The updated endpoint.") },
  errors: { 404: ENDPOINT_NOT_FOUND, 422: { description: URL_REFUSED, example: { error: "validation_error", message: "URL must use https" } } },
});

const DeleteRoute = defineRoute({
  scope: "ops",
  method: "delete",
  path: "/api/v1/webhook-endpoints/{endpoint_id}",
  operationId: "deleteWebhookEndpoint",
  summary: "Delete an endpoint and its undelivered events",
  tags: TAG,
  request: { params: EndpointIdParams },
  responses: { 204: { description: "Deleted. The messages' timelines keep the attempts made." } },
  errors: { 404: ENDPOINT_NOT_FOUND },
});

const RotateRoute = defineRoute({
  scope: "ops",
  method: "post",
  path: "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
  operationId: "rotateWebhookEndpointSecret",
  summary: "Replace an endpoint's signing secret; the new one is shown once",
  tags: TAG,
  request: { params: EndpointIdParams },
  responses: { 200: json(WebhookEndpointWithSecret, "The endpoint with its new secret: every attempt from now on, retries included, is signed with it.") },
  errors: { 404: ENDPOINT_NOT_FOUND },
});

const EventsRoute = defineRoute({
  scope: "ops",
  method: "get",
  path: "/api/v1/webhook-events",
  operationId: "listWebhookEvents",
  summary: "List status webhook events (per target), newest first",
  tags: TAG,
  request: { query: WebhookEventListQuery },
  responses: { 200: json(WebhookEventList, "A page of events and the total.") },
});

const RedeliverRoute = defineRoute({
  scope: "ops",
  method: "post",
  path: "/api/v1/webhook-events/{event_id}/redeliver",
  operationId: "redeliverWebhookEvent",
  summary: "Send an event again, with a fresh retry schedule",
  tags: TAG,
  request: { params: WebhookEventIdParams },
  responses: { 202: json(WebhookEvent, "The event, due now; the same webhook-id, so a receiver that already has it can drop it.") },
  errors: {
    404: { description: "No webhook event has this id.", example: { error: "not_found", message: "Webhook event not found" } },
    409: { description: "The event's endpoint is disabled.", example: { error: "endpoint_disabled", message: "The event's endpoint is disabled; enable it first (PATCH enabled: true)" } },
  },
});

export function registerWebhookEndpointRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(CreateRoute, async (c) => c.json(await createEndpoint(c.get("deps"), c.get("config"), c.req.valid("json")), 201));

  app.openapi(ListRoute, async (c) => c.json(await listEndpoints(c.get("deps"), c.req.valid("query")), 200));

  app.openapi(GetRoute, async (c) => c.json(await getEndpoint(c.get("deps"), c.req.valid("param").endpoint_id), 200));

  app.openapi(PatchRoute, async (c) =>
    c.json(await updateEndpoint(c.get("deps"), c.get("config"), c.req.valid("param").endpoint_id, c.req.valid("json")), 200),
  );

  app.openapi(DeleteRoute, async (c) => {
    await deleteEndpoint(c.get("deps"), c.req.valid("param").endpoint_id);
    return c.body(null, 204);
  });

  app.openapi(RotateRoute, async (c) => c.json(await rotateSecret(c.get("deps"), c.req.valid("param").endpoint_id), 200));

  app.openapi(EventsRoute, async (c) => {
    const { limit, offset, ...filter } = c.req.valid("query");
    return c.json(await listWebhookEvents(c.get("deps"), filter, { limit, offset }), 200);
  });

  app.openapi(RedeliverRoute, async (c) => {
    const event = await redeliver(c.get("deps"), c.req.valid("param").event_id);
    runAfterResponse(c, ringWebhookWorker(c.env));
    return c.json(event, 202);
  });
}
