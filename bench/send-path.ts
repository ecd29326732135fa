// The async send path: network round trips per send (queries seen by Postgres through the Neon
// proxy, requests seen by the Upstash bridge) and the route's latency under autocannon at 1, 10
// and 50 connections. Rate limiting is off so the pipeline is measured alone.
//   npm run bench:send            (PORT and DURATION_S optional)
import autocannon from "autocannon";
import { smsBody, startBenchStack } from "./lib.ts";

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
  const redis = stack.bridge.stats();
  const pg = stack.proxy.stats();
  console.log(`round trips per async send (mean of ${N} sends):`);
  console.log(`  postgres queries   ${(pg.queries / N).toFixed(2)}  (connections opened ${(pg.connections / N).toFixed(2)})`);
  console.log(`  redis requests     ${(redis.requests / N).toFixed(2)}  (commands ${(redis.commands / N).toFixed(2)})`);

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
