// Proves the app's conventions: probes, 404/405 in the envelope, correlation ids, fail-loud config.
import { describe, expect, it } from "vitest";
import { call, DEAD_URL } from "./helpers/http";

describe("probes", () => {
  it("/live answers alive without touching dependencies", async () => {
    const res = await call("/live", {}, { DATABASE_URL: "postgres://nobody@127.0.0.1:9/none", UPSTASH_REDIS_REST_URL: DEAD_URL });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "alive" });
  });

  it("/ready is 200 with Postgres and Redis healthy", async () => {
    const res = await call("/ready");
    const body = await res.json<any>();
    expect(res.status).toBe(200);
    expect(body.ready).toBe(true);
    expect(body.checks.database.status).toBe("healthy");
    expect(body.checks.redis.status).toBe("healthy");
    expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("/ready is 503 naming redis when Redis is unreachable", async () => {
    const res = await call("/ready", {}, { UPSTASH_REDIS_REST_URL: DEAD_URL });
    const body = await res.json<any>();
    expect(res.status).toBe(503);
    expect(body.error).toBe("service_unavailable");
    expect(body.message).toContain("redis");
    expect(body.message).not.toContain("database");
    expect(body.details.ready).toBe(false);
    expect(body.details.checks.redis.status).toBe("unhealthy");
    expect(body.details.checks.database.status).toBe("healthy");
  });

  it("/ready is 503 naming the database when Postgres is unreachable", async () => {
    const res = await call("/ready", {}, { DATABASE_URL: "postgres://root@127.0.0.1:9/none", DB_TIMEOUT_MS: "2000" });
    const body = await res.json<any>();
    expect(res.status).toBe(503);
    expect(body.message).toContain("database");
    expect(body.details.checks.database.status).toBe("unhealthy");
  });

  it("/health answers 200 without touching a dependency, even with both down", async () => {
    const res = await call("/health", {}, { DATABASE_URL: "postgres://nobody@127.0.0.1:9/none", UPSTASH_REDIS_REST_URL: DEAD_URL });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "healthy", timestamp: expect.any(String) });
  });

  it("/startup and / answer 200", async () => {
    expect((await call("/startup")).status).toBe(200);
    const root = await call("/");
    expect(await root.json()).toEqual({ name: "Messaging Service", version: "1.0.0", status: "operational", documentation: "/docs" });
  });
});

describe("conventions", () => {
  it("an unknown route is 404 in the envelope", async () => {
    const res = await call("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "not_found", message: "The requested resource was not found", details: null });
  });

  it("a known path with the wrong method is 405 with Allow", async () => {
    const res = await call("/health", { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    expect((await res.json<any>()).error).toBe("method_not_allowed");
  });

  it("answers with or without a trailing slash, never redirecting", async () => {
    const res = await call("/live/");
    expect(res.status).toBe(200);
  });

  it("echoes a valid X-Correlation-Id and replaces an invalid one", async () => {
    const echoed = await call("/live", { headers: { "x-correlation-id": "abc.DEF_1-2" } });
    expect(echoed.headers.get("x-correlation-id")).toBe("abc.DEF_1-2");
    const replaced = await call("/live", { headers: { "x-correlation-id": "bad id!" } });
    expect(replaced.headers.get("x-correlation-id")).toMatch(/^[0-9a-f-]{36}$/);
    const fresh = await call("/nope");
    expect(fresh.headers.get("x-correlation-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a bad configuration value answers 500 internal_error on every route", async () => {
    for (const path of ["/live", "/nope", "/api/v1/messages"]) {
      const res = await call(path, {}, { SHARDS_PER_TYPE: "zero" });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: "internal_error", message: "An unexpected error occurred", details: null });
    }
  });

  it("every answer carries the security headers, errors included", async () => {
    for (const path of ["/live", "/nope"]) {
      const res = await call(path);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
  });

  it("probes carry no rate-limit headers", async () => {
    const res = await call("/health");
    expect(res.headers.get("x-ratelimit-limit")).toBeNull();
  });
});
