// Proves that bridges started with `rttMs` charge what the real protocols pay over that distance
// (dev/simulated-rtt.ts): HTTP one round trip per request and two more for the TCP + TLS set-up of
// a new connection; WebSocket TCP + TLS + upgrade, then a round trip per Postgres exchange.
// Lower bounds only: a slow machine adds time, it never removes any.
//
// The bridges here (TEST_RTT_*) are this file's alone, and each HTTP test's first request is the
// first that bridge ever gets, so it opens a connection; later ones reuse it (workerd keeps
// connections alive) or open another, which only costs more.
import { env } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, neon, neonConfig } from "@neondatabase/serverless";
import { Redis } from "@upstash/redis/cloudflare";
import { neonHttpEndpoint } from "../../src/db/client";

const vars = env as unknown as {
  DATABASE_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  TEST_RTT_MS: string;
  TEST_RTT_NEON_WS_PROXY: string;
  TEST_RTT_UPSTASH_REDIS_REST_URL: string;
};
const rtt = Number(vars.TEST_RTT_MS);

/**
 * Milliseconds `work` took, as the Worker sees them. workerd's clock stands still between I/O
 * events and has millisecond steps, so a measurement can come out up to 1 ms short.
 */
async function elapsed(work: () => Promise<unknown>): Promise<number> {
  const start = Date.now();
  await work();
  return Date.now() - start + 1;
}

const previousFetchEndpoint = neonConfig.fetchEndpoint;
beforeAll(() => {
  neonConfig.fetchEndpoint = () => neonHttpEndpoint(vars.TEST_RTT_NEON_WS_PROXY);
});
afterAll(() => {
  neonConfig.fetchEndpoint = previousFetchEndpoint;
});

describe("HTTP", () => {
  it("Neon's SQL over HTTP: a new connection's first request costs 3 RTT, each later one at least 1, a transaction() batch too", async () => {
    expect(rtt).toBeGreaterThanOrEqual(20);
    const sql = neon(vars.DATABASE_URL);
    expect(await elapsed(() => sql`select 1`)).toBeGreaterThanOrEqual(3 * rtt);
    for (let i = 0; i < 3; i++) expect(await elapsed(() => sql`select 1`)).toBeGreaterThanOrEqual(rtt);
    const batch = () => sql.transaction([sql`select 1`, sql`select 2`, sql`select 3`]);
    expect(await elapsed(batch)).toBeGreaterThanOrEqual(rtt);
    expect(await batch()).toEqual([[{ "?column?": 1 }], [{ "?column?": 2 }], [{ "?column?": 3 }]]);
  });

  it("the Upstash REST bridge: a new connection's first request costs 3 RTT, each later one at least 1, a pipeline too", async () => {
    const redis = new Redis({ url: vars.TEST_RTT_UPSTASH_REDIS_REST_URL, token: vars.UPSTASH_REDIS_REST_TOKEN, retry: false, enableAutoPipelining: false });
    expect(await elapsed(() => redis.ping())).toBeGreaterThanOrEqual(3 * rtt);
    for (let i = 0; i < 3; i++) expect(await elapsed(() => redis.ping())).toBeGreaterThanOrEqual(rtt);
    const key = `bridge-test:rtt:${crypto.randomUUID()}`;
    const pipeline = () => redis.pipeline().set(key, "v").get(key).del(key).exec();
    expect(await elapsed(pipeline)).toBeGreaterThanOrEqual(rtt);
    expect(await pipeline()).toEqual(["OK", "v", 1]);
  });
});

describe("WebSocket", () => {
  it("connecting costs TCP + TLS + upgrade + the startup exchange (4 RTT), and every query a round trip", async () => {
    const client = new Client(vars.DATABASE_URL);
    client.neonConfig.wsProxy = (host, port) => `${vars.TEST_RTT_NEON_WS_PROXY}?address=${host}:${port}`;
    client.neonConfig.useSecureWebSocket = false;
    client.neonConfig.pipelineTLS = false;
    client.neonConfig.pipelineConnect = false;
    // workerd reports the proxy's clean close as "Network connection lost." (see dev/README.md).
    const unexpected: Error[] = [];
    client.on("error", (error: Error) => {
      if (!/Network connection lost/.test(error.message)) unexpected.push(error);
    });
    expect(await elapsed(() => client.connect())).toBeGreaterThanOrEqual(4 * rtt);
    try {
      expect(await elapsed(() => client.query("select 1"))).toBeGreaterThanOrEqual(rtt);
      // An interactive transaction pays each statement's round trip: BEGIN, INSERT-like work, COMMIT.
      const transaction = async () => {
        await client.query("begin");
        await client.query("select 1");
        await client.query("commit");
      };
      expect(await elapsed(transaction)).toBeGreaterThanOrEqual(3 * rtt);
      expect((await client.query("select 41 + 1 as answer")).rows).toEqual([{ answer: 42 }]);
    } finally {
      await client.end();
    }
    expect(unexpected).toEqual([]);
  });
});
