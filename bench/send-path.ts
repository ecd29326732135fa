// The async send path: network round trips per send (queries seen by Postgres through the Neon
// proxy, requests seen by the Upstash bridge) and the route's latency under autocannon at 1, 10
// and 50 connections. Rate limiting is off so the pipeline is measured alone.
//   npm run bench:send            (PORT and DURATION_S optional)
// bench/all.ts imports runSendPath and uses the returned figures.
import autocannon from "autocannon";
import { expectCreated, isMain, percentile, postJson, smsBody, startBenchStack } from "./lib.ts";

export interface SendPathOptions {
  port: number;
  /** seconds of autocannon at each number of connections */
  durationS: number;
}

export interface AutocannonRow {
  connections: number;
  reqPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  non2xx: number;
}

export interface SendPathResult {
  roundTrips: {
    sends: number;
    /** Postgres connections that ran exactly one query: one per send */
    postgresSingleQueryConnections: number;
    /** the worker's connections and queries, counted apart */
    postgresOtherConnections: number;
    postgresOtherQueries: number;
    /** bridge requests that are a lone XADD: one per send */
    redisLoneXadd: number;
    redisRequestsByCommands: Record<string, number>;
  };
  autocannon: AutocannonRow[];
  sequential: {
    sends: number;
    simulatorMs: number;
    async: { p50Ms: number; p99Ms: number };
    sync: { p50Ms: number; p99Ms: number };
    /** async p50 / sync p50 */
    ratioP50: number;
  };
}

export function sendPathOptionsFromEnv(): SendPathOptions {
  return { port: Number(process.env.PORT ?? 8180), durationS: Number(process.env.DURATION_S ?? 10) };
}

export async function runSendPath({ port, durationS }: SendPathOptions): Promise<SendPathResult> {
  const stack = await startBenchStack(port);
  const sendUrl = `${stack.url}/api/v1/messages/send`;
  const post = (body: string) => postJson(sendUrl, body);
  let roundTrips: SendPathResult["roundTrips"];
  const rows: AutocannonRow[] = [];

  try {
    for (let i = 0; i < 20; i++) await post(smsBody()); // warm up isolates and connections
    await new Promise((r) => setTimeout(r, 1000));

    const N = 50;
    stack.bridge.resetStats();
    stack.proxy.resetStats();
    for (let i = 0; i < N; i++) {
      expectCreated(await post(smsBody()));
    }
    await new Promise((r) => setTimeout(r, 1000)); // let waitUntil work finish
    // The worker runs meanwhile and has its own connections and requests: tell them apart. A send
    // route opens one pool per request; the worker's runs claim and record (2+ queries each). The
    // send's Redis request is a lone XADD; the worker's are scripts and XACK+XREADGROUP pipelines.
    const redis = stack.bridge.stats();
    const pg = stack.proxy.stats();
    const single = pg.queriesPerConnection.filter((n) => n === 1).length;
    roundTrips = {
      sends: N,
      postgresSingleQueryConnections: single,
      postgresOtherConnections: pg.connections - single,
      postgresOtherQueries: pg.queries - single,
      redisLoneXadd: redis.requestsByCommands.XADD ?? 0,
      redisRequestsByCommands: { ...redis.requestsByCommands },
    };
    console.log(`round trips per async send (${N} sends, one after another; the worker running alongside):`);
    console.log(`  postgres: ${single} connections with exactly 1 query (the sends'), ${pg.connections - single} others with ${pg.queries - single} queries (the worker's)`);
    console.log(`  redis:    ${redis.requestsByCommands.XADD ?? 0} requests that are a lone XADD (the sends'); all requests by commands: ${JSON.stringify(redis.requestsByCommands)}`);

    console.log(`\nPOST /api/v1/messages/send under autocannon, ${durationS} s each, distinct pairs:`);
    console.log("  connections   req/s     p50 ms   p90 ms   p99 ms   non-2xx");
    for (const connections of [1, 10, 50]) {
      const result = await autocannon({
        url: sendUrl,
        connections,
        duration: durationS,
        requests: [{ method: "POST", headers: { "content-type": "application/json" }, setupRequest: (req) => ({ ...req, body: smsBody() }) }],
      });
      const l = result.latency;
      rows.push({ connections, reqPerS: result.requests.average, p50Ms: l.p50, p90Ms: l.p90, p99Ms: l.p99, non2xx: result.non2xx });
      console.log(
        `  ${String(connections).padStart(11)}   ${result.requests.average.toFixed(0).padStart(5)}   ${l.p50.toFixed(1).padStart(8)} ${l.p90.toFixed(1).padStart(8)} ${l.p99.toFixed(1).padStart(8)}   ${result.non2xx}`,
      );
    }
  } finally {
    await stack.close();
  }

  // Async against sync sends with the simulator at 100 ms (docs/architecture.md: async ≤ 1/3 of sync).
  async function sequentialLatency(vars: Record<string, string>, count = 100): Promise<number[]> {
    const s = await startBenchStack(port, { SIMULATOR_LATENCY_MS: "100", ...vars });
    try {
      const url = `${s.url}/api/v1/messages/send`;
      for (let i = 0; i < 10; i++) await postJson(url, smsBody());
      const ms: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        expectCreated(await postJson(url, smsBody()));
        ms.push(performance.now() - started);
      }
      return ms.sort((a, b) => a - b);
    } finally {
      await s.close();
    }
  }
  const asyncMs = await sequentialLatency({ SYNC_MESSAGE_PROCESSING: "false" });
  const syncMs = await sequentialLatency({ SYNC_MESSAGE_PROCESSING: "true" });
  const sequential = {
    sends: asyncMs.length,
    simulatorMs: 100,
    async: { p50Ms: percentile(asyncMs, 50), p99Ms: percentile(asyncMs, 99) },
    sync: { p50Ms: percentile(syncMs, 50), p99Ms: percentile(syncMs, 99) },
    ratioP50: percentile(asyncMs, 50) / percentile(syncMs, 50),
  };
  console.log("\nsend latency, one at a time, simulator at 100 ms (100 sends each):");
  console.log(`  async  p50 ${sequential.async.p50Ms.toFixed(1)} ms  p99 ${sequential.async.p99Ms.toFixed(1)} ms`);
  console.log(`  sync   p50 ${sequential.sync.p50Ms.toFixed(1)} ms  p99 ${sequential.sync.p99Ms.toFixed(1)} ms`);
  console.log(`  async / sync at p50: ${sequential.ratioP50.toFixed(2)}   (budget ≤ 0.33)`);

  return { roundTrips, autocannon: rows, sequential };
}

if (isMain(import.meta.url)) await runSendPath(sendPathOptionsFromEnv());
