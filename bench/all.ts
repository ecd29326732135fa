// Every benchmark in one invocation, then bench/results.md, bench/results.json and
// bench/results.svg (bench/report.ts). One process, one after another, so that the QueueWorker and
// BullMQ figures come from the same machine at the same time.
//   npm run bench                 the full profile (the figures to quote)
//   QUICK=1 npm run bench         small counts, every code path in a few minutes (development)
// The counts can be overridden one by one with the environment variables of bench:send and
// bench:worker (MESSAGES, IDLE_S, THROUGHPUT_MESSAGES, SENDERS, DURATION_S) and COLD_STARTS; PORT,
// when set, is used by every benchmark in turn. SECTIONS is not read: a partial run would leave
// holes in the report.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import pg from "pg";
import Redis from "ioredis";
import { runBudgets } from "./budgets.ts";
import { runColdStart } from "./cold-start.ts";
import { POSTGRES_URL, REDIS_URL } from "./lib.ts";
import { writeReport, RESULTS_MD, RESULTS_JSON, RESULTS_SVG, type BenchResults, type BundleResult } from "./report.ts";
import { runScheduled } from "./scheduled.ts";
import { listBudgets } from "./list-1m.ts";
import { runSendPath } from "./send-path.ts";
import { runWebhooks, webhookBudgets } from "./webhooks.ts";
import { runWorker, WORKER_SECTIONS } from "./worker.ts";

const run = promisify(execFile);
const QUICK = !!process.env.QUICK && process.env.QUICK !== "0";

/** The profile's value unless the environment sets the knob. */
function knob(name: string, full: string, quick: string): string {
  return process.env[name] ?? (QUICK ? quick : full);
}

const knobs = {
  DURATION_S: Number(knob("DURATION_S", "10", "3")),
  // 10 and 50 senders: the two loads of bench/README.md's commands-per-message figure.
  SENDERS: knob("SENDERS", "10,50", "10"),
  MESSAGES: Number(knob("MESSAGES", "5000", "500")),
  // Whole minutes: the loop fires the cron at the start of each minute of the window, so a window
  // of 60·k seconds holds k sweeps; 125 s would hold 3 sweeps in 2.08 min and read 1.44/min.
  IDLE_S: Number(knob("IDLE_S", "180", "60")),
  THROUGHPUT_MESSAGES: Number(knob("THROUGHPUT_MESSAGES", "1200", "300")),
  COLD_STARTS: Number(knob("COLD_STARTS", "3", "1")),
  SCHEDULED_MESSAGES: Number(knob("SCHEDULED_MESSAGES", "50", "20")),
  // bench/webhooks.ts: messages per phase (plain, then retry), one every WEBHOOK_INTERVAL_MS
  WEBHOOK_MESSAGES: Number(knob("WEBHOOK_MESSAGES", "200", "50")),
  WEBHOOK_INTERVAL_MS: Number(knob("WEBHOOK_INTERVAL_MS", "50", "50")),
  // bench/budgets.ts: sends per transport at 20 ms RTT, messages offered at 20/s, and how much the
  // idle hour is compressed (60 crons 60/k s apart with a 600/k s safety cadence)
  BUDGET_SENDS: Number(knob("BUDGET_SENDS", "100", "30")),
  BUDGET_MESSAGES_20: Number(knob("BUDGET_MESSAGES_20", "1200", "300")),
  IDLE_HOUR_COMPRESSION: Number(knob("IDLE_HOUR_COMPRESSION", "20", "60")),
  LOST_ENQUEUES: Number(knob("LOST_ENQUEUES", "5", "3")),
};
const PORT = process.env.PORT ? Number(process.env.PORT) : undefined;

async function git(...args: string[]): Promise<string> {
  return (await run("git", args, { cwd: new URL("..", import.meta.url) })).stdout.trim();
}

/** Commit, and whether the tree differs from it; the report files themselves do not count. */
async function commitInfo(): Promise<{ commit: string; uncommitted: boolean }> {
  try {
    const commit = await git("rev-parse", "--short", "HEAD");
    const own = new Set([RESULTS_MD, RESULTS_JSON, RESULTS_SVG].map((u) => `bench/${u.pathname.split("/").pop()}`));
    // Porcelain lines are "XY path"; the previous run's output is not a change to what is measured.
    const changed = (await git("status", "--porcelain")).split("\n").filter((line) => line && !own.has(line.slice(3)));
    return { commit, uncommitted: changed.length > 0 };
  } catch {
    return { commit: "unknown (not a git checkout)", uncommitted: false };
  }
}

async function osName(): Promise<string> {
  const kernel = `${os.type()} ${os.release()} ${os.arch()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(await readFile("/etc/os-release", "utf8"))?.[1];
    return pretty ? `${pretty}, ${kernel}` : kernel;
  } catch {
    return kernel;
  }
}

async function redisVersion(): Promise<string | undefined> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await redis.connect();
    return /^redis_version:(\S+)/m.exec(await redis.info("server"))?.[1];
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

async function postgresVersion(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return (await client.query("show server_version")).rows[0]?.server_version;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The real bundler, no upload; sizes of the modules wrangler writes (source maps are not uploaded). */
async function bundleSize(): Promise<BundleResult> {
  const outdir = await mkdtemp(join(os.tmpdir(), "msg-bench-bundle-"));
  try {
    const { stdout } = await run("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
      cwd: new URL("..", import.meta.url),
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      maxBuffer: 16 * 1024 * 1024,
    });
    const files = (await readdir(outdir)).filter((name) => !name.endsWith(".map") && name !== "README.md").sort();
    if (files.length === 0) throw new Error(`wrangler wrote no bundle into ${outdir}`);
    let raw = 0;
    let gzip = 0;
    for (const name of files) {
      const bytes = await readFile(join(outdir, name));
      raw += bytes.length;
      gzip += gzipSync(bytes).length;
    }
    const wranglerSays = /Total Upload:[^\n]*/.exec(stdout)?.[0].trim();
    const result = { files, rawKiB: raw / 1024, gzipKiB: gzip / 1024, wranglerSays };
    console.log(`bundle: ${files.join(", ")}: ${result.rawKiB.toFixed(2)} KiB, ${result.gzipKiB.toFixed(2)} KiB gzipped${wranglerSays ? ` (wrangler: ${wranglerSays})` : ""}`);
    return result;
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

const started = performance.now();
const [{ commit, uncommitted }, osText, redis, postgres] = await Promise.all([commitInfo(), osName(), redisVersion(), postgresVersion()]);
const results: BenchResults = {
  meta: {
    date: new Date().toISOString(),
    commit,
    uncommitted,
    profile: QUICK ? "quick" : "full",
    knobs,
    machine: {
      cpu: os.cpus()[0]?.model.trim() ?? "unknown",
      cores: os.cpus().length,
      memoryGiB: os.totalmem() / 2 ** 30,
      os: osText,
      node: process.version,
      redis,
      postgres,
    },
    seconds: {},
  },
  errors: {},
};
console.log(`npm run bench, ${results.meta.profile} profile: ${Object.entries(knobs).map(([k, v]) => `${k}=${v}`).join(" ")}`);

/** Runs one benchmark; a failure is recorded and the others still run, so that one run reports all it can. */
async function step<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
  console.log(`\n=== ${name} ===`);
  const t0 = performance.now();
  try {
    return await work();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    results.errors[name] = message;
    console.error(`${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
    return undefined;
  } finally {
    results.meta.seconds[name] = (performance.now() - t0) / 1000;
  }
}

results.sendPath = await step("send-path", () => runSendPath({ port: PORT ?? 8180, durationS: knobs.DURATION_S }));
results.worker = await step("worker", () =>
  runWorker({
    port: PORT ?? 8181,
    messages: knobs.MESSAGES,
    idleS: knobs.IDLE_S,
    throughputMessages: knobs.THROUGHPUT_MESSAGES,
    sections: WORKER_SECTIONS,
    senders: knobs.SENDERS.split(",").map(Number),
  }),
);
results.coldStart = await step("cold-start", () => runColdStart({ port: PORT ?? 8182, runs: knobs.COLD_STARTS }));
results.scheduled = await step("scheduled", () => runScheduled({ port: PORT ?? 8183, messages: knobs.SCHEDULED_MESSAGES, aheadMs: 4000 }));
results.webhooks = await step("webhooks", () => runWebhooks({ port: PORT ?? 8185, messages: knobs.WEBHOOK_MESSAGES, intervalMs: knobs.WEBHOOK_INTERVAL_MS }));
results.bundle = await step("bundle", bundleSize);
const budgets = await step("budgets", () =>
  runBudgets({
    port: PORT ?? 8184,
    sends: knobs.BUDGET_SENDS,
    messages20: knobs.BUDGET_MESSAGES_20,
    idleCompression: knobs.IDLE_HOUR_COMPRESSION,
    lostEnqueues: knobs.LOST_ENQUEUES,
  }),
);
if (budgets) {
  results.budgets = budgets.budgets;
  results.budgetsDetail = budgets.detail;
}
// issue 15's keys come from their own benchmarks
if (results.webhooks) results.budgets = { ...results.budgets, ...webhookBudgets(results.webhooks) };
// bench/list-1m.ts takes minutes and is run alone (npm run bench:list): its last section and keys
// are carried over, with the date they were measured (list1m.measuredAt).
try {
  const previous = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as BenchResults;
  if (previous.list1m) {
    results.list1m = previous.list1m;
    results.budgets = { ...results.budgets, ...listBudgets(previous.list1m) };
  }
} catch {
  // no previous results: nothing to carry over
}
results.meta.seconds.total = (performance.now() - started) / 1000;

await writeReport(results);
console.log(`\nwrote ${RESULTS_MD.pathname}, ${RESULTS_JSON.pathname}, ${RESULTS_SVG.pathname} (${(results.meta.seconds.total / 60).toFixed(1)} min)`);
const failed = Object.keys(results.errors);
if (failed.length > 0) console.error(`failed: ${failed.join(", ")}`);
// Explicit exit: a failed benchmark may leave a client or timer behind that would keep Node alive.
process.exit(failed.length > 0 ? 1 : 0);
