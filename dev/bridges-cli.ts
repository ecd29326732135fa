// `npx tsx dev/bridges-cli.ts`: both dev bridges on fixed ports, for poking at them by hand
// (`dev/run.ts` starts them itself for the full local stack).
import { startRedisBridge } from "./redis-bridge.ts";
import { startNeonProxy } from "./neon-proxy.ts";
import { bridgeRttFromEnv } from "./simulated-rtt.ts";

const redisBridgePort = Number(process.env.REDIS_BRIDGE_PORT ?? 8079);
const neonProxyPort = Number(process.env.NEON_PROXY_PORT ?? 8078);
const token = process.env.UPSTASH_REDIS_REST_TOKEN ?? "dev-token";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const rttMs = bridgeRttFromEnv();

const bridge = await startRedisBridge({ redisUrl, token, port: redisBridgePort, rttMs });
const proxy = await startNeonProxy({ port: neonProxyPort, rttMs });

console.log(`Upstash REST bridge  UPSTASH_REDIS_REST_URL=${bridge.url}  UPSTASH_REDIS_REST_TOKEN=${token}  (→ ${redisUrl})`);
console.log(`Neon WebSocket proxy NEON_WS_PROXY=${proxy.wsProxy}  (?address=host:port, allowed: 127.0.0.1, localhost)`);
console.log(`Neon SQL over HTTP   neonConfig.fetchEndpoint=${proxy.httpEndpoint}  (same server)`);
console.log(`simulated round trip BRIDGE_RTT_MS=${rttMs}`);
console.log(`try: curl -s ${bridge.url} -H 'Authorization: Bearer ${token}' -d '["PING"]'`);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) process.exit(1); // a second Ctrl-C does not wait
  closing = true;
  console.log(`\n${signal}: closing bridges (redis: ${JSON.stringify(bridge.stats())}, postgres: ${JSON.stringify(proxy.stats())})`);
  await Promise.allSettled([bridge.close(), proxy.close()]);
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
