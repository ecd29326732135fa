// `npm run dev`: the whole local service on http://127.0.0.1:$PORT (default 8080): checks Redis and
// Postgres, creates the database and applies migrations, starts the Upstash REST bridge and the
// Neon WebSocket proxy, runs `wrangler dev`, fires the cron every minute, and stops everything it
// started on Ctrl-C. Every setting of src/config.ts given in the environment reaches the Worker.
import { StackError, startStack } from "./stack.ts";

const port = Number(process.env.PORT ?? 8080);

let stack;
try {
  stack = await startStack({
    port,
    databaseUrl: process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/messaging",
    redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    token: process.env.UPSTASH_REDIS_REST_TOKEN ?? "dev-token",
    bridgePort: Number(process.env.REDIS_BRIDGE_PORT ?? 8079),
    proxyPort: Number(process.env.NEON_PROXY_PORT ?? 8078),
    sandboxPort: Number(process.env.PROVIDER_SANDBOX_PORT ?? 8077),
  });
} catch (error) {
  console.error(`npm run dev: ${error instanceof StackError ? error.message : String(error)}`);
  process.exit(1);
}
const running = stack;
console.log(`\nmessaging service on ${running.url}, console ${running.url}/console, API reference ${running.url}/docs (upstash bridge ${running.bridge.url}, neon proxy ws://${running.proxy.wsProxy}); Ctrl-C stops it`);

const cron = setInterval(() => {
  running.triggerCron().catch((error: unknown) => console.warn(`cron trigger failed: ${String(error)}`));
}, 60_000);

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  clearInterval(cron);
  await running.stop();
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
running.wrangler.on("exit", (code) => void stop(code ?? 0));
