// The local stack as a library: Postgres database + migrations, the Upstash REST bridge, the Neon
// WebSocket proxy and `wrangler dev`. `npm run dev` uses it, and so do the benchmarks and checks
// that need a running service.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import Redis from "ioredis";
import { boundedFetch } from "./bounded-fetch.ts";
import { ConfigSchema } from "../src/config.ts";
import { applyMigrations, ensureDatabase, postgresAnswers } from "./db.ts";
import { startNeonProxy, type NeonProxy } from "./neon-proxy.ts";
import { startRedisBridge, type RedisBridge, type RedisBridgeOptions } from "./redis-bridge.ts";
import { bridgeRttFromEnv } from "./simulated-rtt.ts";
import { startProviderSandbox, type ProviderSandbox } from "./provider-sandbox.ts";
import { buildAssets } from "./build-assets.ts";

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
  /** start the Twilio/SendGrid sandbox for providers the caller gave no settings for (default true) */
  providerSandbox?: boolean;
  sandboxPort?: number;
  /** passed to the Redis bridge: sees every command and its outcome */
  observeRedis?: RedisBridgeOptions["observe"];
  /** where workerd keeps Durable Object storage (default: wrangler's .wrangler/state) */
  persistTo?: string;
  /**
   * simulated round trip to Neon and Upstash in ms, charged by both bridges per request and per
   * connection set-up (dev/simulated-rtt.ts); default $BRIDGE_RTT_MS, else 0 (loopback)
   */
  rttMs?: number;
}

export interface Stack {
  url: string;
  /** from spawning `wrangler dev` to the first 200 from /live */
  coldStartMs: number;
  bridge: RedisBridge;
  proxy: NeonProxy;
  /** the provider sandbox, when started (see sandboxVars) */
  sandbox?: ProviderSandbox;
  wrangler: ChildProcess;
  /**
   * Kills workerd with SIGKILL (every Durable Object evicted mid-work, in-flight requests cut) and
   * starts it again on the same port; resolves when /live answers.
   */
  crash(): Promise<void>;
  /** fires the cron handler once, as the platform would every minute */
  triggerCron(): Promise<void>;
  stop(): Promise<void>;
}

export class StackError extends Error {}

export async function redisAnswers(redisUrl: string): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {}); // the failed connect() already says so
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
      const res = await fetch(`${url}/live`, { signal: AbortSignal.timeout(5000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new StackError(`the Worker did not answer ${url}/live within ${timeoutMs / 1000} s`);
}

/**
 * Worker settings that point a provider at the sandbox, for each provider the caller left alone:
 * no PROVIDER_MODE, none of its REST credentials and no base URL of its own. Twilio gets the
 * sandbox's API key rather than its auth token: the auth token would also switch on
 * X-Twilio-Signature checks, and development keeps the contract's default of no webhook secrets
 * (an unsigned curl to a webhook works). TWILIO_AUTH_TOKEN=sandbox-auth-token turns the checks
 * on; the sandbox signs its callbacks with that token.
 */
export function sandboxVars(sandbox: ProviderSandbox, workerUrl: string, vars: Record<string, string>): Record<string, string> {
  if (vars.PROVIDER_MODE) return {};
  const out: Record<string, string> = {};
  const twilioKeys = ["TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "TWILIO_API_BASE_URL"];
  const [apiKeySid, apiKeySecret] = Object.entries(sandbox.twilio.apiKeys ?? {})[0] ?? [];
  if (!twilioKeys.some((k) => vars[k]) && apiKeySid && apiKeySecret) {
    Object.assign(out, {
      TWILIO_API_BASE_URL: sandbox.url,
      TWILIO_ACCOUNT_SID: sandbox.twilio.accountSid,
      TWILIO_API_KEY_SID: apiKeySid,
      TWILIO_API_KEY_SECRET: apiKeySecret,
    });
  }
  if (!vars.SENDGRID_API_KEY && !vars.SENDGRID_API_BASE_URL) Object.assign(out, { SENDGRID_API_BASE_URL: sandbox.url, SENDGRID_API_KEY: sandbox.sendgrid.apiKey });
  // Status callbacks are only requested when the service knows its public origin.
  if (Object.keys(out).length > 0 && !vars.PUBLIC_BASE_URL) out.PUBLIC_BASE_URL = workerUrl;
  return out;
}

async function portAnswers(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  process.env.WRANGLER_SEND_METRICS = "false";
  let rttMs: number;
  try {
    rttMs = opts.rttMs ?? bridgeRttFromEnv();
  } catch (error) {
    throw new StackError((error as Error).message);
  }
  // Otherwise a server left over on the port would answer for us.
  if (await portAnswers(opts.port)) throw new StackError(`port ${opts.port} is already in use; stop what runs there or set PORT`);
  await checkServices(opts.databaseUrl, opts.redisUrl);
  // wrangler.toml's [assets] directory must exist; `npm run dev` builds it first, the benchmarks and
  // the chaos suite may start on a fresh checkout.
  if (!existsSync(new URL("../dist-assets/console/index.html", import.meta.url))) await buildAssets();
  if (await ensureDatabase(opts.databaseUrl)) console.log(`created database ${new URL(opts.databaseUrl).pathname.slice(1)}`);
  await applyMigrations(opts.databaseUrl);

  const bridge = await startRedisBridge({ redisUrl: opts.redisUrl, db: opts.redisDb, token: opts.token, port: opts.bridgePort ?? 0, observe: opts.observeRedis, rttMs });
  const proxy = await startNeonProxy({ port: opts.proxyPort ?? 0, rttMs });
  if (rttMs > 0 && !opts.quiet) console.log(`bridges simulate a ${rttMs} ms round trip to Neon and Upstash (BRIDGE_RTT_MS)`);
  const url = `http://127.0.0.1:${opts.port}`;
  const sandbox =
    opts.providerSandbox === false
      ? undefined
      : await startProviderSandbox({ port: opts.sandboxPort ?? Number(process.env.PROVIDER_SANDBOX_PORT ?? 0), callbacks: { mode: "post" }, sendgridEventsUrl: `${url}/api/v1/webhooks/sendgrid` });

  const vars: Record<string, string> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = process.env[key];
    if (value !== undefined) vars[key] = value;
  }
  Object.assign(vars, { DATABASE_URL: opts.databaseUrl, UPSTASH_REDIS_REST_TOKEN: opts.token }, opts.vars);
  vars.UPSTASH_REDIS_REST_URL ??= bridge.url;
  vars.NEON_WS_PROXY ??= proxy.wsProxy;
  if (sandbox) {
    const pointed = sandboxVars(sandbox, url, vars);
    Object.assign(vars, pointed);
    const served = [pointed.TWILIO_API_BASE_URL && "twilio", pointed.SENDGRID_API_BASE_URL && "sendgrid"].filter(Boolean);
    if (!opts.quiet) console.log(`provider sandbox on ${sandbox.url} (serving: ${served.join(", ") || "nothing, providers are configured"}; see dev/README.md)`);
  }

  const args = ["wrangler", "dev", "--env", "development", "--ip", "127.0.0.1", "--port", String(opts.port), "--test-scheduled", "--show-interactive-dev-session=false"];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  if (opts.persistTo) args.push("--persist-to", opts.persistTo);
  // Its own process group, so that stopping it also stops workerd and the other children of npx.
  const spawnWrangler = () => spawn("npx", args, { stdio: opts.quiet ? "ignore" : "inherit", env: process.env, detached: true });
  const signal = (child: ChildProcess, name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // already gone
    }
  };
  const exited = (child: ChildProcess, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const stopWrangler = async (child: ChildProcess) => {
    signal(child, "SIGTERM");
    if (!(await exited(child, 5000))) signal(child, "SIGKILL");
  };

  const spawnedAt = performance.now();
  let wrangler = spawnWrangler();
  let coldStartMs = 0;
  const stop = async () => {
    await stopWrangler(wrangler);
    await Promise.allSettled([bridge.close(), proxy.close(), sandbox?.close()]);
  };

  try {
    await waitForLive(url, wrangler);
    coldStartMs = performance.now() - spawnedAt;
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url,
    coldStartMs,
    bridge,
    proxy,
    sandbox,
    get wrangler() {
      return wrangler;
    },
    async crash() {
      signal(wrangler, "SIGKILL");
      await exited(wrangler, 5000);
      wrangler = spawnWrangler();
      await waitForLive(url, wrangler);
    },
    async triggerCron() {
      // bounded: a cron tick that gets no answer (workerd restarting) is simply missed
      const answer = await boundedFetch(`${url}/__scheduled?cron=${encodeURIComponent("* * * * *")}`, {}, 30_000);
      if (answer.status === 0) throw new Error(`cron trigger got no answer (${answer.error})`);
    },
    stop,
  };
}
