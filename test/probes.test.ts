// Probes are cheap and safe: /ready's checks are reused for a few seconds per isolate and limited
// per address in memory, and /metrics can require a bearer token. Statements are counted at the
// boundary to Postgres (the Neon HTTP driver's fetch).
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { call } from "./helpers/http";

const realFetch = neonConfig.fetchFunction;
afterEach(() => {
  neonConfig.fetchFunction = realFetch;
});

/** Counts the Postgres requests made while `work` runs. */
async function postgresRequests(work: () => Promise<unknown>): Promise<number> {
  let n = 0;
  neonConfig.fetchFunction = (url: string, init: RequestInit) => {
    n++;
    return fetch(url, init);
  };
  await work();
  neonConfig.fetchFunction = realFetch;
  return n;
}

/** A fresh configuration (so a fresh readiness cache) for each test: any setting that differs will do. */
const fresh = () => ({ ...env, CORS_ORIGINS: `http://probe-${crypto.randomUUID()}.test` }) as unknown as Record<string, string>;

/** Like `call`, but with this very env object on every request, as one isolate of a deployment sees it. */
async function callWith(environment: Record<string, string>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`http://service.test${path}`, init), environment as unknown as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("probes", () => {
  it("/health and /live make no Postgres request, however often they are called", async () => {
    const overrides = fresh();
    const n = await postgresRequests(async () => {
      for (let i = 0; i < 20; i++) {
        expect((await call("/health", {}, overrides)).status).toBe(200);
        expect((await call("/live", {}, overrides)).status).toBe(200);
      }
    });
    expect(n).toBe(0);
  });

  it("/ready checks Postgres once for several calls within its cache period", async () => {
    const overrides = fresh();
    const n = await postgresRequests(async () => {
      for (let i = 0; i < 5; i++) expect((await callWith(overrides, "/ready")).status).toBe(200);
    });
    expect(n).toBe(1);
  });

  it("/ready answers 429 with Retry-After to an address that probes too often, and other addresses still get through", async () => {
    const overrides = fresh();
    const from = (ip: string) => ({ headers: { "cf-connecting-ip": ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await call("/ready", from("203.0.113.7"), overrides)).status);
    expect(statuses.slice(0, 30).every((s) => s === 200)).toBe(true);
    const refused = await call("/ready", from("203.0.113.7"), overrides);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await call("/ready", from("203.0.113.8"), overrides)).status).toBe(200);
  });

  it("/metrics requires the bearer METRICS_TOKEN when one is set", async () => {
    const overrides = { METRICS_TOKEN: "scrape-secret" };
    expect((await call("/metrics", {}, overrides)).status).toBe(401);
    expect((await call("/metrics", { headers: { authorization: "Bearer wrong" } }, overrides)).status).toBe(401);
    const ok = await call("/metrics", { headers: { authorization: "Bearer scrape-secret" } }, overrides);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("# TYPE http_requests_total counter");
  });
});
