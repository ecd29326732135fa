// The local stack as a library: Postgres database + migrations, the Upstash REST bridge, the Neon
// WebSocket proxy and `wrangler dev`. `npm run dev` uses it, and so do the benchmarks and checks
// that need a running service.
import { spawn, type ChildProcess } from "node:child_process";
import Redis from "ioredis";
import { ConfigSchema } from "../src/config.ts";
import { applyMigrations, ensureDatabase, postgresAnswers } from "./db.ts";
import { startNeonProxy, type NeonProxy } from "./neon-proxy.ts";
import { startRedisBridge, type RedisBridge } from "./redis-bridge.ts";

export interface StackOptions {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  redisDb?: number;
  token: string;
  bridgePort?: number;
  proxyPort?: number;
  /** Worker settings; every ConfigSchema key found in process.env is passed too, these win */
  vars?: Record<string, string>;
  /** print wrangler's output (npm run dev) or keep quiet (benchmarks) */
  quiet?: boolean;
}

export interface Stack {
  url: string;
  bridge: RedisBridge;
  proxy: NeonProxy;
  wrangler: ChildProcess;
  /** fires the cron handler once, as the platform would every minute */
  triggerCron(): Promise<void>;
  stop(): Promise<void>;
}

export class StackError extends Error {}

export async function redisAnswers(redisUrl: string): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return (await redis.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export async function checkServices(databaseUrl: string, redisUrl: string): Promise<void> {
  if (!(await postgresAnswers(databaseUrl))) {
    throw new StackError(`Postgres does not answer for ${new URL(databaseUrl).host}. Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
  }
  if (!(await redisAnswers(redisUrl))) {
    throw new StackError(`Redis does not answer at ${redisUrl}. Start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`);
  }
}

async function waitForLive(url: string, wrangler: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (wrangler.exitCode !== null) throw new StackError(`wrangler dev exited with code ${wrangler.exitCode}`);
    try {
      const res = await fetch(`${url}/live`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new StackError(`the Worker did not answer ${url}/live within ${timeoutMs / 1000} s`);
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  process.env.WRANGLER_SEND_METRICS = "false";
  await checkServices(opts.databaseUrl, opts.redisUrl);
  if (await ensureDatabase(opts.databaseUrl)) console.log(`created database ${new URL(opts.databaseUrl).pathname.slice(1)}`);
  await applyMigrations(opts.databaseUrl);

  const bridge = await startRedisBridge({ redisUrl: opts.redisUrl, db: opts.redisDb, token: opts.token, port: opts.bridgePort ?? 0 });
  const proxy = await startNeonProxy({ port: opts.proxyPort ?? 0 });

  const vars: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = process.env[key];
    if (value !== undefined) vars[key] = value;
  }
  Object.assign(vars, { DATABASE_URL: opts.databaseUrl, UPSTASH_REDIS_REST_TOKEN: opts.token }, opts.vars);
  vars.UPSTASH_REDIS_REST_URL ??= bridge.url;
  vars.NEON_WS_PROXY ??= proxy.wsProxy;

  const args = ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(opts.port), "--test-scheduled", "--show-interactive-dev-session=false"];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const wrangler = spawn("npx", args, { stdio: opts.quiet ? "ignore" : "inherit", env: process.env, detached: false });
  const url = `http://127.0.0.1:${opts.port}`;

  const stop = async () => {
    if (wrangler.exitCode === null) {
      wrangler.kill("SIGTERM");
      await new Promise((r) => {
        const timer = setTimeout(() => {
          wrangler.kill("SIGKILL");
          r(undefined);
        }, 5000);
        wrangler.once("exit", () => {
          clearTimeout(timer);
          r(undefined);
        });
      });
    }
    await Promise.allSettled([bridge.close(), proxy.close()]);
  };

  try {
    await waitForLive(url, wrangler);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url,
    bridge,
    proxy,
    wrangler,
    async triggerCron() {
      await fetch(`${url}/__scheduled?cron=${encodeURIComponent("* * * * *")}`);
    },
    stop,
  };
}
