// `npm run dev`: the whole local service on http://127.0.0.1:$PORT (default 8080).
// Checks Redis and Postgres, creates the database and applies migrations, starts the Upstash REST
// bridge and the Neon WebSocket proxy, runs `wrangler dev`, fires the cron every minute, and stops
// everything it started on Ctrl-C.
import { spawn } from "node:child_process";
import Redis from "ioredis";
import { ConfigSchema } from "../src/config.ts";
import { applyMigrations, ensureDatabase, postgresAnswers } from "./db.ts";
import { startNeonProxy } from "./neon-proxy.ts";
import { startRedisBridge } from "./redis-bridge.ts";

process.env.WRANGLER_SEND_METRICS = "false";
const PORT = Number(process.env.PORT ?? 8080);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/messaging";
const TOKEN = process.env.UPSTASH_REDIS_REST_TOKEN ?? "dev-token";

function fail(line: string): never {
  console.error(`npm run dev: ${line}`);
  process.exit(1);
}

async function redisAnswers(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

if (!(await postgresAnswers(DATABASE_URL))) {
  fail(`Postgres does not answer for ${new URL(DATABASE_URL).host}. Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
}
if (!(await redisAnswers())) {
  fail(`Redis does not answer at ${REDIS_URL}. Start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`);
}
if (await ensureDatabase(DATABASE_URL)) console.log(`created database ${new URL(DATABASE_URL).pathname.slice(1)}`);
await applyMigrations(DATABASE_URL);
console.log("migrations applied");

const bridge = await startRedisBridge({ redisUrl: REDIS_URL, token: TOKEN, port: Number(process.env.REDIS_BRIDGE_PORT ?? 8079) });
const proxy = await startNeonProxy({ port: Number(process.env.NEON_PROXY_PORT ?? 8078) });
console.log(`upstash bridge ${bridge.url}, neon proxy ws://${proxy.wsProxy}`);

// Every setting of src/config.ts given in the environment reaches the Worker; the local stack's
// addresses are filled in unless the caller set them.
const vars: Record<string, string> = {};
for (const key of Object.keys(ConfigSchema.shape)) {
  const value = process.env[key];
  if (value !== undefined) vars[key] = value;
}
vars.DATABASE_URL = DATABASE_URL;
vars.UPSTASH_REDIS_REST_URL ??= bridge.url;
vars.UPSTASH_REDIS_REST_TOKEN = TOKEN;
vars.NEON_WS_PROXY ??= proxy.wsProxy;

const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(PORT), "--test-scheduled", "--show-interactive-dev-session=false"];
for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
const wrangler = spawn("npx", args, { stdio: "inherit", env: process.env });

const cron = setInterval(() => {
  fetch(`http://127.0.0.1:${PORT}/__scheduled?cron=${encodeURIComponent("* * * * *")}`).catch((error: unknown) =>
    console.warn(`cron trigger failed: ${String(error)}`),
  );
}, 60_000);

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  clearInterval(cron);
  if (wrangler.exitCode === null) wrangler.kill("SIGTERM");
  await Promise.allSettled([bridge.close(), proxy.close()]);
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
wrangler.on("exit", (code) => void stop(code ?? 0));
