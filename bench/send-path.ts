// The async send path: network round trips per send (queries seen by Postgres through the Neon
// proxy, requests seen by the Upstash bridge) and the route's latency under autocannon at 1, 10
// and 50 connections. Rate limiting is off so the pipeline is measured alone.
//   npm run bench:send            (PORT and DURATION_S optional)
import autocannon from "autocannon";
import { percentile, smsBody, startBenchStack } from "./lib.ts";

const PORT = Number(process.env.PORT ?? 8180);
const DURATION_S = Number(process.env.DURATION_S ?? 10);
const stack = await startBenchStack(PORT);
const sendUrl = `${stack.url}/api/v1/messages/send`;
const post = (body: string) => fetch(sendUrl, { method: "POST", headers: { "content-type": "application/json" }, body });

try {
  for (let i = 0; i < 20; i++) await post(smsBody()); // warm up isolates and connections
  await new Promise((r) => setTimeout(r, 1000));

  const N = 50;
  stack.bridge.resetStats();
  stack.proxy.resetStats();
  for (let i = 0; i < N; i++) {
    const res = await post(smsBody());
    if (res.status !== 201) throw new Error(`send answered ${res.status}: ${await res.text()}`);
  }
  await new Promise((r) => setTimeout(r, 1000)); // let waitUntil work finish
  // The worker runs meanwhile and has its own connections and requests: tell them apart. A send
  // route opens one pool per request; the worker's runs claim and record (2+ queries each). The
  // send's Redis request is a lone XADD; the worker's are scripts and XACK+XREADGROUP pipelines.
  const redis = stack.bridge.stats();
  const pg = stack.proxy.stats();
  const single = pg.queriesPerConnection.filter((n) => n === 1).length;
  console.log(`round trips per async send (${N} sends, one after another; the worker running alongside):`);
  console.log(`  postgres: ${single} connections with exactly 1 query (the sends'), ${pg.connections - single} others with ${pg.queries - single} queries (the worker's)`);
  console.log(`  redis:    ${redis.requestsByCommands.XADD ?? 0} requests that are a lone XADD (the sends'); all requests by commands: ${JSON.stringify(redis.requestsByCommands)}`);

  console.log(`\nPOST /api/v1/messages/send under autocannon, ${DURATION_S} s each, distinct pairs:`);
  console.log("  connections   req/s     p50 ms   p90 ms   p99 ms   non-2xx");
  for (const connections of [1, 10, 50]) {
    const result = await autocannon({
      url: sendUrl,
      connections,
      duration: DURATION_S,
      requests: [{ method: "POST", headers: { "content-type": "application/json" }, setupRequest: (req) => ({ ...req, body: smsBody() }) }],
    });
    const l = result.latency;
    console.log(
      `  ${String(connections).padStart(11)}   ${result.requests.average.toFixed(0).padStart(5)}   ${l.p50.toFixed(1).padStart(8)} ${l.p90.toFixed(1).padStart(8)} ${l.p99.toFixed(1).padStart(8)}   ${result.non2xx}`,
    );
  }
} finally {
  await stack.close();
}

// Async against sync sends with the simulator at 100 ms (DESIGN.md §8: async ≤ 1/3 of sync).
async function sequentialLatency(vars: Record<string, string>, count = 100): Promise<number[]> {
  const s = await startBenchStack(PORT, { SIMULATOR_LATENCY_MS: "100", ...vars });
  try {
    const url = `${s.url}/api/v1/messages/send`;
    for (let i = 0; i < 10; i++) await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: smsBody() });
    const ms: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: smsBody() });
      await res.text();
      if (res.status !== 201) throw new Error(`send answered ${res.status}`);
      ms.push(performance.now() - started);
    }
    return ms.sort((a, b) => a - b);
  } finally {
    await s.close();
  }
}
const asyncMs = await sequentialLatency({ SYNC_MESSAGE_PROCESSING: "false" });
const syncMs = await sequentialLatency({ SYNC_MESSAGE_PROCESSING: "true" });
console.log("\nsend latency, one at a time, simulator at 100 ms (100 sends each):");
console.log(`  async  p50 ${percentile(asyncMs, 50).toFixed(1)} ms  p99 ${percentile(asyncMs, 99).toFixed(1)} ms`);
console.log(`  sync   p50 ${percentile(syncMs, 50).toFixed(1)} ms  p99 ${percentile(syncMs, 99).toFixed(1)} ms`);
console.log(`  async / sync at p50: ${(percentile(asyncMs, 50) / percentile(syncMs, 50)).toFixed(2)}   (budget ≤ 0.33)`);
