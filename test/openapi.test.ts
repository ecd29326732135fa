// Proves that /openapi.json, generated from the route declarations, documents exactly the routes the
// app serves, with what the middleware does to each (security, the answers given before a handler
// runs), and that the documented response schemas accept what the routes really answer.
import { describe, expect, it } from "vitest";
import type { z } from "@hono/zod-openapi";
import { createApp } from "../src/app";
import { policyFor } from "../src/http/policy";
import { ErrorEnvelope } from "../src/openapi";
import {
  Conversation,
  ConversationList,
  DeadLetterList,
  Dependencies,
  EventList,
  Health,
  LegacyConversationList,
  LegacyMessageList,
  LegacySendResult,
  Liveness,
  Message,
  MessageList,
  NotReady,
  QueueStats,
  Readiness,
  ServiceInfo,
  Startup,
  WebhookStatus,
} from "../src/routes/schemas";
import { call, DEAD_URL, jsonRequest } from "./helpers/http";
import { freshPair, getJson, send, SMS } from "./helpers/fixtures";

type Operation = {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema?: unknown; example?: unknown; examples?: unknown }> };
  responses: Record<string, { $ref?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown; example?: unknown; examples?: unknown }> }>;
};

const doc = await (await call("/openapi.json")).json<any>();
const operations: { method: string; path: string; op: Operation }[] = Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
);

/** A component reference resolved, or the object itself. */
function resolve<T>(value: T): T {
  const ref = (value as { $ref?: string })?.$ref;
  if (!ref) return value;
  return ref
    .slice(2)
    .split("/")
    .reduce((node: any, key) => node[key], doc);
}

function hasExample(media: { schema?: unknown; example?: unknown; examples?: unknown }): boolean {
  return media.example !== undefined || media.examples !== undefined || (resolve(media.schema) as { example?: unknown })?.example !== undefined;
}

describe("the document", () => {
  it("documents every route the app serves, with its method and path template, and nothing else", () => {
    const served = new Set(
      createApp()
        .routes.filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`),
    );
    const documented = new Set(operations.map(({ method, path }) => `${method} ${path}`));
    expect([...served].sort()).toEqual([...documented].sort());
    expect(documented.size).toBe(50);
  });

  it("is OpenAPI 3.1 with servers, a license, a contact and a description for every tag", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "/", description: "The service that serves this document" }]);
    expect(doc.info.license.name).toBe("Proprietary");
    expect(doc.info.contact.name).toBeTruthy();
    const used = new Set(operations.flatMap(({ op }) => op.tags ?? []));
    expect([...used].sort()).toEqual(doc.tags.map((t: { name: string }) => t.name).sort());
    for (const tag of doc.tags) expect(tag.description, tag.name).toBeTruthy();
  });

  it("gives every operation a unique operationId, a tag, a summary, and a schema and an example for every body", () => {
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(operations.length);
    for (const { method, path, op } of operations) {
      const name = `${method} ${path}`;
      expect(op.operationId, name).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.tags, name).toHaveLength(1);
      expect(op.summary, name).toBeTruthy();
      const success = Object.entries(op.responses).filter(([status]) => status.startsWith("2"));
      expect(success, name).toHaveLength(1);
      for (const [status, response] of Object.entries(op.responses)) {
        for (const [type, media] of Object.entries(resolve(response).content ?? {})) {
          expect(media.schema, `${name} ${status} ${type}`).toBeDefined();
          expect(hasExample(media), `${name} ${status} ${type} example`).toBe(true);
        }
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        expect(hasExample(media), `${name} request ${type} example`).toBe(true);
      }
    }
    expect(Object.keys(doc.paths["/api/v1/conversations/{conversation_id}"].delete.responses)).toContain("204");
  });

  it("declares each operation's security as its policy enforces it: bearer on the API, signatures on webhooks, none on probes", () => {
    for (const { method, path, op } of operations) {
      const policy = policyFor(method, path);
      const schemes = (op.security ?? []).flatMap((requirement) => Object.keys(requirement)).sort();
      // The one scope the key needs (OpenAPI 3.1 roles), also as x-required-scope and a 403.
      if (policy.auth) {
        expect(op.security, `${method} ${path}`).toEqual([{ bearerAuth: [(op as { "x-required-scope"?: string })["x-required-scope"]] }]);
        expect(["send", "read", "ops", "admin"]).toContain((op as { "x-required-scope"?: string })["x-required-scope"]);
        expect(op.responses["403"], `${method} ${path}`).toBeDefined();
      }
      else if (policy.webhook) expect(schemes.length, `${method} ${path}`).toBeGreaterThan(0);
      else expect(op.security, `${method} ${path}`).toEqual([]);
    }
    expect(doc.paths["/api/v1/webhooks/twilio"].post.security).toEqual([{ twilioSignature: [] }]);
    expect(doc.paths["/api/v1/webhooks/sendgrid"].post.security).toEqual([{ sendgridSignature: [], sendgridTimestamp: [] }]);
    expect(doc.components.securitySchemes.twilioSignature).toMatchObject({ type: "apiKey", in: "header", name: "X-Twilio-Signature" });
    expect(doc.paths["/health"].get.security).toEqual([]);
  });

  it("lists the answers the middleware gives before a handler, on the routes it gives them", () => {
    for (const { method, path, op } of operations) {
      const policy = policyFor(method, path);
      const statuses = Object.keys(op.responses);
      const name = `${method} ${path}`;
      expect(resolve(op.responses["405"]!).headers, name).toHaveProperty("Allow");
      expect(statuses, name).toContain("500");
      expect(statuses.includes("401"), name).toBe(policy.auth);
      expect(statuses.includes("429"), name).toBe(policy.rateLimited);
      expect(statuses.includes("413") && statuses.includes("415"), name).toBe(policy.jsonBody || policy.webhook);
      if (policy.rateLimited) {
        expect(resolve(op.responses["429"]!).headers, name).toHaveProperty("Retry-After");
        const [, success] = Object.entries(op.responses).find(([status]) => status.startsWith("2"))!;
        expect(Object.keys(success.headers ?? {}), name).toEqual(expect.arrayContaining(["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]));
      }
      for (const status of statuses.filter((s) => !s.startsWith("2"))) {
        const content = resolve(op.responses[status]!).content!["application/json"]!;
        expect(content, `${name} ${status}`).toBeDefined();
      }
    }
  });

  it("documents the Idempotency-Key header on the send routes, with replay and conflict", () => {
    for (const [path, success] of [["/api/v1/messages/send", "201"], ["/api/messages/sms", "200"], ["/api/messages/email", "200"]] as const) {
      const op = doc.paths[path].post;
      const header = op.parameters.find((p: { name: string }) => p.name === "Idempotency-Key");
      expect(header).toMatchObject({ in: "header", required: false, schema: { type: "string", minLength: 1, maxLength: 255 } });
      expect(op.responses[success].headers["Idempotent-Replayed"].schema).toEqual({ type: "string", enum: ["true"] });
      expect(op.responses["409"].headers).toHaveProperty("Retry-After");
    }
  });

  it("documents the webhook bodies by reference, so no validator reads them before the signature check", () => {
    const content = doc.paths["/api/v1/webhooks/twilio"].post.requestBody.content;
    expect(Object.keys(content).sort()).toEqual(["application/json", "application/x-www-form-urlencoded"]);
    expect(content["application/x-www-form-urlencoded"].schema).toEqual({ $ref: "#/components/schemas/TwilioWebhookForm" });
    expect(Object.keys(doc.paths["/api/v1/webhooks/sendgrid"].post.requestBody.content).sort()).toEqual(["application/json", "multipart/form-data"]);
    expect(doc.paths["/api/v1/webhooks/sendgrid"].post.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      "X-Twilio-Email-Event-Webhook-Signature",
      "X-Twilio-Email-Event-Webhook-Timestamp",
    ]);
  });
});

/** The body of a real answer, checked against the schema that documents it. */
async function answers(schema: z.ZodType, path: string, init: RequestInit = {}, overrides = {}) {
  const res = await call(path, init, overrides);
  const body = await res.json();
  const parsed = schema.safeParse(body);
  expect(parsed.error?.issues ?? [], `${path}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
  return { res, body: body as any };
}

describe("the documented response schemas accept the real answers", () => {
  it("messages, events, conversations and their lists", async () => {
    const pair = freshPair();
    const { body: message } = await answers(Message, "/api/v1/messages/send", jsonRequest("POST", { ...SMS, ...pair, metadata: { k: "v" } }));
    await answers(Message, `/api/v1/messages/${message.id}`);
    await answers(MessageList, `/api/v1/messages?conversation_id=${message.conversation_id}`);
    await answers(EventList, `/api/v1/messages/${message.id}/events`);
    await answers(Conversation, `/api/v1/conversations/${message.conversation_id}?include_messages=true`);
    await answers(ConversationList, `/api/v1/conversations?participant=${encodeURIComponent(pair.to)}`);
    await answers(ConversationList, "/api/v1/conversations/search", jsonRequest("POST", { query: pair.to.slice(-6) }));
    await answers(Conversation, "/api/v1/conversations", jsonRequest("POST", { type: "thread", participant_from: "a@example.com", participant_to: "b@example.com" }));
    await answers(LegacySendResult, "/api/messages/email", jsonRequest("POST", { from: "a@example.com", to: "b@example.com", body: "hi" }));
    await answers(LegacyConversationList, "/api/conversations?limit=5");
    await answers(LegacyMessageList, `/api/conversations/${message.conversation_id}/messages`);
    const { res } = await answers(ErrorEnvelope, "/api/v1/messages/send", jsonRequest("POST", { ...SMS, to: "nope" }));
    expect(res.status).toBe(422);
  });

  it("queue statistics and dead letters, with a dead letter in the list", async () => {
    await answers(QueueStats, "/api/v1/queue/stats");
    // A permanent provider error (21211) dead-letters the message at once.
    const { body: failed } = await send({ ...SMS, to: "+15005550001", body: `dead letter ${crypto.randomUUID()}` });
    let listed = false;
    for (let i = 0; i < 100 && !listed; i++) {
      const { body } = await getJson("/api/v1/queue/dead-letters?type=sms&limit=100");
      listed = body.dead_letters.some((d: { message_id: string }) => d.message_id === failed.id);
      if (!listed) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(listed).toBe(true);
    await answers(DeadLetterList, "/api/v1/queue/dead-letters?type=sms&limit=100");
  });

  it("probes, including /ready's 503 details", async () => {
    await answers(ServiceInfo, "/");
    await answers(Liveness, "/live");
    await answers(Health, "/health");
    await answers(Readiness, "/ready");
    await answers(Startup, "/startup");
    await answers(Dependencies, "/dependencies");
    await answers(WebhookStatus, "/api/v1/webhooks/status/twilio");
    const { res, body } = await answers(ErrorEnvelope, "/ready", {}, { UPSTASH_REDIS_REST_URL: DEAD_URL, REDIS_TIMEOUT_MS: "500" });
    expect(res.status).toBe(503);
    expect(NotReady.safeParse(body.details).error?.issues ?? []).toEqual([]);
  });
});
