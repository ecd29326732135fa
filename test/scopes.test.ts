// Scoped API keys: every route the app registers, under a key of every scope, answers 403
// insufficient_scope exactly when the key lacks the route's scope. Routes are enumerated from the
// app's OpenAPI registry, and the expected scope of each is this table: a new route fails here
// until it is placed in it.
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../src/app";
import { policyFor } from "../src/http/policy";
import { SCOPES, type Scope } from "../src/http/scopes";
import { call, jsonRequest } from "./helpers/http";
import { SMS } from "./helpers/fixtures";

const EXPECTED: Record<string, Scope> = {
  "POST /api/v1/messages/send": "send",
  "POST /api/v1/messages/{message_id}/retry": "send",
  "POST /api/messages/sms": "send",
  "POST /api/messages/email": "send",
  "POST /api/v1/conversations": "send",
  "PATCH /api/v1/conversations/{conversation_id}": "send",
  "DELETE /api/v1/conversations/{conversation_id}": "send",
  "POST /api/v1/conversations/{conversation_id}/read": "send",
  "GET /api/v1/messages": "read",
  "GET /api/v1/messages/{message_id}": "read",
  "GET /api/v1/messages/{message_id}/events": "read",
  "GET /api/v1/conversations": "read",
  "POST /api/v1/conversations/search": "read",
  "GET /api/v1/conversations/{conversation_id}": "read",
  "GET /api/conversations": "read",
  "GET /api/conversations/{id}/messages": "read",
  "PATCH /api/v1/messages/{message_id}/status": "ops",
  "GET /api/v1/queue/stats": "ops",
  "GET /api/v1/queue/dead-letters": "ops",
  "POST /api/v1/queue/dead-letters/{message_id}/redrive": "ops",
  "POST /api/v1/queue/dead-letters/redrive": "ops",
  "GET /api/v1/webhooks/status/{provider}": "ops",
  "GET /api/v1/ops/timeseries": "ops",
  "GET /api/v1/ops/failures": "ops",
  "DELETE /api/v1/suppressions/{address}": "ops",
  "DELETE /api/v1/webhook-endpoints/{endpoint_id}": "ops",
  "GET /api/v1/messages/{message_id}/attachments/{n}": "read",
  "GET /api/v1/suppressions": "ops",
  "GET /api/v1/webhook-endpoints": "ops",
  "GET /api/v1/webhook-endpoints/{endpoint_id}": "ops",
  "GET /api/v1/webhook-events": "ops",
  "PATCH /api/v1/webhook-endpoints/{endpoint_id}": "ops",
  "POST /api/v1/messages/{message_id}/cancel": "send",
  "POST /api/v1/webhook-endpoints": "ops",
  "POST /api/v1/webhook-endpoints/{endpoint_id}/rotate-secret": "ops",
  "POST /api/v1/webhook-events/{event_id}/redeliver": "ops",
};

/** What a key of each scope may do besides its own scope. */
const GRANTS: Record<Scope, Scope[]> = { send: ["send"], read: ["read"], ops: ["ops", "read"], admin: [...SCOPES] };

async function digest(key: string) {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const KEYS = Object.fromEntries(SCOPES.map((scope) => [scope, `key-${scope}-${crypto.randomUUID()}`])) as Record<Scope, string>;
const RAW_ADMIN = `raw-${crypto.randomUUID()}`;
const API_KEYS = [...(await Promise.all(SCOPES.map(async (scope) => `k_${scope}:${scope}:${await digest(KEYS[scope])}`))), RAW_ADMIN].join(",");
const settings = { API_KEYS };

const registered = createApp()
  .openAPIRegistry.definitions.filter((d) => d.type === "route")
  .map((d) => {
    const route = (d as { route: Record<string, unknown> & { method: string; path: string } }).route;
    return { method: route.method.toUpperCase(), template: route.path, scope: route["x-required-scope"] as Scope | undefined, security: route.security };
  });
const protectedRoutes = registered.filter((r) => policyFor(r.method, r.template).auth);

function concrete(template: string) {
  return template.replace(/\{provider\}/, "twilio").replace(/\{[a-z_]+\}/g, () => crypto.randomUUID());
}

function request(method: string, headers: Record<string, string>): RequestInit {
  return { method, headers: { "content-type": "application/json", ...headers }, body: method === "GET" || method === "DELETE" ? undefined : "{}" };
}

describe("API key scopes", () => {
  it("every protected route of the registry declares the scope the table expects", () => {
    const declared = Object.fromEntries(protectedRoutes.map((r) => [`${r.method} ${r.template}`, r.scope]));
    expect(declared).toEqual(EXPECTED);
    for (const route of protectedRoutes) expect(route.security).toEqual([{ bearerAuth: [route.scope] }]);
    // and no unprotected route claims one
    for (const route of registered.filter((r) => !policyFor(r.method, r.template).auth)) expect(route.scope).toBeUndefined();
  });

  const cases = protectedRoutes.flatMap((route) => SCOPES.map((held) => ({ ...route, held, allowed: GRANTS[held].includes(route.scope!) })));

  it.each(cases)("$method $template with a $held key: allowed=$allowed", async ({ method, template, scope, held, allowed }) => {
    const res = await call(concrete(template), request(method, { authorization: `Bearer ${KEYS[held]}` }), settings);
    if (allowed) {
      expect([401, 403]).not.toContain(res.status);
    } else {
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: "insufficient_scope", message: `This API key lacks the ${scope} scope`, details: { required_scope: scope } });
    }
  });

  it.each(protectedRoutes)("$method $template: a raw key is admin, a scoped entry's digest is not a key, no key is 401", async ({ method, template }) => {
    const path = concrete(template);
    expect([401, 403]).not.toContain((await call(path, request(method, { authorization: `Bearer ${RAW_ADMIN}` }), settings)).status);
    const stored = API_KEYS.split(",")[0]!;
    for (const header of [`Bearer ${stored}`, `Bearer ${stored.split(":")[2]}`, `Bearer ${KEYS.ops}x`, undefined]) {
      const res = await call(path, request(method, header ? { authorization: header } : {}), settings);
      expect(res.status, header).toBe(401);
    }
  });

  it("refuses malformed scoped entries at configuration time, without echoing them", async () => {
    for (const bad of ["ci:send:abc", "ci:write:" + "a".repeat(64), "ci:send:" + "A".repeat(64), "c i:send:" + "a".repeat(64), `a:send:${"a".repeat(64)},a:read:${"b".repeat(64)}`]) {
      const lines: string[] = [];
      const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
      const res = await call("/api/v1/messages", { headers: { authorization: "Bearer x" } }, { API_KEYS: bad });
      spy.mockRestore();
      expect(res.status, bad).toBe(500);
      expect(lines.join("\n")).toContain("invalid_configuration");
      expect(lines.join("\n")).not.toContain("a".repeat(64));
    }
  });

  it("records the key's name (never the key) on the created event and in the logs", async () => {
    const lines: string[] = [];
    const spies = (["log", "warn", "error"] as const).map((level) => vi.spyOn(console, level).mockImplementation((line: string) => void lines.push(String(line))));
    const sent = await call("/api/v1/messages/send", jsonRequest("POST", SMS, { authorization: `Bearer ${KEYS.send}` }), settings);
    expect(sent.status).toBe(201);
    const message = await sent.json<{ id: string }>();
    const denied = await call("/api/v1/queue/stats", { headers: { authorization: `Bearer ${KEYS.send}` } }, settings);
    expect(denied.status).toBe(403);
    const events = await call(`/api/v1/messages/${message.id}/events`, { headers: { authorization: `Bearer ${KEYS.read}` } }, settings);
    expect(events.status).toBe(200);
    const created = (await events.json<{ events: { type: string; data: Record<string, unknown> }[] }>()).events.find((e) => e.type === "created")!;
    expect(created.data).toMatchObject({ source: "api", api_key: "k_send" });
    for (const spy of spies) spy.mockRestore();
    const logged = lines.join("\n");
    expect(logged).toContain('"api_key":"k_send"');
    for (const key of Object.values(KEYS)) expect(logged).not.toContain(key);
  });

  it("rate-limits per key name: one key's window does not touch another's", async () => {
    const [a, b] = [`rl-a-${crypto.randomUUID()}`, `rl-b-${crypto.randomUUID()}`];
    const names = [`rla${Date.now()}`, `rlb${Date.now()}`];
    const limited = { RATE_LIMIT_REQUESTS: "2", RATE_LIMIT_BURST: "2", API_KEYS: `${names[0]}:ops:${await digest(a)},${names[1]}:ops:${await digest(b)}` };
    // A new address on every request: the window follows the key, not where it comes from.
    const from = (key: string) => ({ authorization: `Bearer ${key}`, "cf-connecting-ip": crypto.randomUUID() });
    for (let i = 0; i < 2; i++) expect((await call("/api/v1/queue/stats", { headers: from(a) }, limited)).status).toBe(200);
    expect((await call("/api/v1/queue/stats", { headers: from(a) }, limited)).status).toBe(429);
    expect((await call("/api/v1/queue/stats", { headers: from(b) }, limited)).status).toBe(200);
  });
});
