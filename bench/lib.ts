// Shared pieces of the benchmarks: a private database and Redis logical database per run, the
// local stack around them, and small statistics helpers.
import type Redis from "ioredis";
import type pg from "pg";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { boundedFetch } from "../dev/bounded-fetch.ts";
import { dropDatabase } from "../dev/db.ts";
import { claimRedisDb } from "../dev/redis-db.ts";
import { startStack, type Stack } from "../dev/stack.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/postgres";

export interface BenchStack extends Stack {
  databaseUrl: string;
  redis: Redis;
  close(): Promise<void>;
}

export interface BenchStackOptions {
  /** simulated round trip to Neon and Upstash in ms (dev/simulated-rtt.ts); default $BRIDGE_RTT_MS, else 0 */
  rttMs?: number;
  /** the database to use (created and migrated if missing, dropped by close()); default msg_bench_<pid> */
  databaseName?: string;
  /** close() leaves the database (a benchmark that loaded it may want to look at it afterwards) */
  keepDatabase?: boolean;
}

export async function startBenchStack(port: number, vars: Record<string, string> = {}, opts: BenchStackOptions = {}): Promise<BenchStack> {
  const databaseUrl = Object.assign(new URL(POSTGRES_URL), { pathname: `/${opts.databaseName ?? `msg_bench_${process.pid}`}` }).toString();
  const claimed = await claimRedisDb(REDIS_URL);
  // Durable Object storage of its own: a shard's alarm left by the previous stack would otherwise
  // wake in this one and be counted as this stack's traffic.
  const persistTo = await mkdtemp(join(os.tmpdir(), "msg-bench-state-"));
  const stack = await startStack({
    persistTo,
    port,
    databaseUrl,
    redisUrl: REDIS_URL,
    redisDb: claimed.db,
    token: "bench-token",
    quiet: !process.env.BENCH_VERBOSE,
    // The pipeline alone: no rate limiter, the in-Worker simulator rather than the HTTP sandbox.
    providerSandbox: false,
    rttMs: opts.rttMs,
    vars: { RATE_LIMIT_ENABLED: "false", PROVIDER_MODE: "simulator", ...vars },
  });
  return Object.assign(stack, {
    databaseUrl,
    redis: claimed.redis,
    async close() {
      await stack.stop();
      await claimed.release();
      if (!opts.keepDatabase) await dropDatabase(databaseUrl);
      await rm(persistTo, { recursive: true, force: true });
    },
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

let pairCounter = 0;
/** A send body with its own pair of numbers, so that requests do not queue on one conversation row. */
export function smsBody(): string {
  pairCounter += 1;
  const n = String(pairCounter).padStart(7, "0").slice(-7);
  return JSON.stringify({ type: "sms", from: `+1202${n}`, to: `+1303${n}`, body: "bench message" });
}

/**
 * True when the module is the script node was started with (`tsx bench/x.ts`), false when
 * bench/all.ts imports it: each benchmark stays runnable alone and importable without side effects.
 */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(resolve(script)).href === moduleUrl;
}

/** A benchmark's request ceiling: a send that gets no answer within it fails the run as "no answer". */
export const REQUEST_TIMEOUT_MS = Number(process.env.BENCH_REQUEST_TIMEOUT_MS ?? 30_000);

/** POSTs a JSON body with the ceiling; status 0 is "no answer" (refused, reset or timed out). */
export async function postJson(url: string, body: string): Promise<{ status: number; text: string; error?: string }> {
  return boundedFetch(url, { method: "POST", headers: { "content-type": "application/json" }, body }, REQUEST_TIMEOUT_MS);
}

/** Throws unless the answer is a 201; a missing answer says so. */
export function expectCreated(answer: { status: number; text: string; error?: string }): void {
  if (answer.status !== 201) throw new Error(answer.status === 0 ? `send got no answer (${answer.error})` : `send answered ${answer.status}: ${answer.text.slice(0, 200)}`);
}

/** Polls the bench's own database until `expected` messages are sent (a ceiling, not a budget). */
export async function waitUntilSent(db: pg.Client, expected: number, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query("select count(*)::int as n from messages where status = 'sent'");
    if (rows[0].n >= expected) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0].n} of ${expected} sent`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
