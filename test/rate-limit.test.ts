// Proves per-client rate limiting (§1.6, §10 cases 5, 6) through @upstash/ratelimit over the bridge.
import { describe, expect, it } from "vitest";
import { call, DEAD_URL } from "./helpers/http";
import { waitFor } from "./helpers/worker";

const client = () => ({ "cf-connecting-ip": `203.0.113.${Math.floor(Math.random() * 250)}-${crypto.randomUUID()}` });

describe("rate limiting", () => {
  it("counts down, then answers 429 with Retry-After (case 6)", async () => {
    const headers = client();
    // A bucket of 5 that refills one token an hour: nothing comes back during the test.
    const limit = { RATE_LIMIT_REQUESTS: "1", RATE_LIMIT_PERIOD: "3600", RATE_LIMIT_BURST: "5" };
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call("/api/v1/messages", { headers }, limit);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBe("5");
      remaining.push(res.headers.get("x-ratelimit-remaining")!);
      expect(Number(res.headers.get("x-ratelimit-reset"))).toBeGreaterThanOrEqual(1);
    }
    expect(remaining).toEqual(["4", "3", "2", "1", "0"]);
    const limited = await call("/api/v1/messages", { headers }, limit);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toEqual({ error: "rate_limited", message: "Too many requests. Please try again later.", details: null });
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get("retry-after")).toBe(limited.headers.get("x-ratelimit-reset"));
    // Buckets are per route template: another route still has its own allowance.
    expect((await call("/api/v1/conversations", { headers }, limit)).status).toBe(200);
  });

  it("never limits the probes (case 6) and marks limited routes (case 5)", async () => {
    const headers = client();
    for (let i = 0; i < 20; i++) {
      const res = await call("/health", { headers }, { RATE_LIMIT_REQUESTS: "5" });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
    }
    const listed = await call("/api/v1/messages", { headers });
    expect(listed.headers.get("x-ratelimit-limit")).toBe("10000");
    expect(listed.headers.get("x-ratelimit-remaining")).not.toBeNull();
    expect(listed.headers.get("x-correlation-id")).not.toBeNull();
  });

  it("keys the bucket by API key when one is presented", async () => {
    const settings = { RATE_LIMIT_REQUESTS: "2", RATE_LIMIT_PERIOD: "3600", RATE_LIMIT_BURST: "2", API_KEYS: "rk1,rk2" };
    const key1 = { authorization: "Bearer rk1", ...client() };
    for (let i = 0; i < 2; i++) expect((await call("/api/v1/messages", { headers: key1 }, settings)).status).toBe(200);
    expect((await call("/api/v1/messages", { headers: { ...key1, ...client() } }, settings)).status).toBe(429);
    expect((await call("/api/v1/messages", { headers: { authorization: "Bearer rk2", ...client() } }, settings)).status).toBe(200);
  });

  it("fails open with Remaining equal to the limit when Redis is down", async () => {
    const res = await call("/", { headers: client() }, { UPSTASH_REDIS_REST_URL: DEAD_URL, RATE_LIMIT_REQUESTS: "7", RATE_LIMIT_BURST: "7" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-remaining")).toBe("7");
  });

  it("sends no headers and no 429 when disabled", async () => {
    // Several requests against a bucket of 1: enabled, the second would be a 429.
    const headers = client();
    const settings = { RATE_LIMIT_ENABLED: "false", RATE_LIMIT_REQUESTS: "1", RATE_LIMIT_PERIOD: "3600", RATE_LIMIT_BURST: "1" };
    for (let i = 0; i < 5; i++) {
      const res = await call("/api/v1/messages", { headers }, settings);
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
    }
  });

  it("allows a burst, then the sustained rate (a token bucket per client and route)", async () => {
    const headers = client();
    // 10 per second sustained, 3 at once.
    const settings = { RATE_LIMIT_REQUESTS: "10", RATE_LIMIT_PERIOD: "1", RATE_LIMIT_BURST: "3" };
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call("/api/v1/conversations", { headers }, settings)).status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses).toContain(429);
    expect((await call("/api/v1/conversations", { headers }, settings)).headers.get("x-ratelimit-limit")).toBe("3");
    // A token comes back every 100 ms.
    await waitFor(() => call("/api/v1/conversations", { headers }, settings).then((r) => r.status), (s) => s === 200, 10_000);
  });

  it("defaults to 600 per 60 s with a burst of 100", async () => {
    const headers = client();
    const settings = { RATE_LIMIT_REQUESTS: "", RATE_LIMIT_PERIOD: "", RATE_LIMIT_BURST: "" };
    const res = await call("/api/v1/messages", { headers }, settings);
    expect(res.headers.get("x-ratelimit-limit")).toBe("100");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("99");
  });
});
