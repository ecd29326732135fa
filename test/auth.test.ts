// Proves bearer auth (§1.3, §10 cases 2-4) over every protected route of the app, so that a new
// route without auth fails here.
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { policyFor } from "../src/http/policy";
import { call, jsonRequest } from "./helpers/http";
import { SMS } from "./helpers/fixtures";

// A route's validators and its handler are separate entries of app.routes: each route once.
const served = new Set(createApp().routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`));
const protectedRoutes = [...served]
  .map((route) => route.split(" ") as [string, string])
  .filter(([method, path]) => policyFor(method, path.replace(/:([a-z_]+)/g, "{$1}")).auth)
  .map(([method, path]) => ({ method, path: path.replace(/:[a-z_]+/g, crypto.randomUUID()) }));

describe("bearer auth", () => {
  it("covers the API routes", () => {
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(15);
    expect(protectedRoutes.map((r) => r.path)).toContain("/api/v1/messages/send");
  });

  it.each(protectedRoutes)("$method $path: no key, a wrong key or a revoked key is 401", async ({ method, path }) => {
    for (const header of [undefined, "Bearer nope", "Bearer old-key", "Basic k1", "Bearer"]) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (header) headers.authorization = header;
      const res = await call(path, { method, headers, body: method === "GET" || method === "DELETE" ? undefined : "{}" }, { API_KEYS: "k1,k2" });
      expect(res.status, `${header}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      expect(await res.json()).toEqual({ error: "unauthorized", message: "Missing or invalid API key", details: null });
    }
  });

  it("accepts each configured key, so keys can be rotated (case 2)", async () => {
    for (const key of ["k1", "k2"]) {
      const res = await call("/api/v1/messages", { headers: { authorization: `Bearer ${key}` } }, { API_KEYS: " k1 , k2 " });
      expect(res.status).toBe(200);
    }
    const send = await call("/api/v1/messages/send", jsonRequest("POST", SMS, { authorization: "Bearer k2" }), { API_KEYS: "k1,k2" });
    expect(send.status).toBe(201);
  });

  it("fails closed outside development without keys, probes stay open (case 4)", async () => {
    const prod = { ENVIRONMENT: "production" };
    const list = await call("/api/v1/messages", {}, prod);
    expect(list.status).toBe(401);
    expect((await list.json<any>()).message).toBe("API keys are not configured");
    expect((await call("/api/messages/sms", jsonRequest("POST", SMS), prod)).status).toBe(401);
    expect((await call("/health", {}, prod)).status).toBe(200);
  });

  it("checks auth before the body (case 3 and §1.2 order)", async () => {
    const res = await call("/api/v1/messages/send", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }, { API_KEYS: "k1" });
    expect(res.status).toBe(401);
  });

  it("lets OPTIONS preflights through without auth", async () => {
    const res = await call("/api/v1/messages", { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "GET" } }, { API_KEYS: "k1" });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    const other = await call("/api/v1/messages", { method: "OPTIONS", headers: { origin: "http://evil.example", "access-control-request-method": "GET" } }, { API_KEYS: "k1" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
