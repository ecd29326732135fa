// `npm run chaos [-- --profile ci]`: the local stack on a Redis and a Postgres of its own, a steady
// load of mixed sends and inbound webhooks, a fault schedule (provider 500s, 429s and hangs, Redis
// and Postgres crashed, workerd killed mid-batch, callbacks duplicated, reordered and redelivered),
// then the queue drained and every invariant checked. Exit code 1 on any violation, 2 when the
// run itself could not be set up. See dev/chaos/README.md.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Redis from "ioredis";
import pg from "pg";
import { STREAM_PREFIX } from "../../src/queue/keys.ts";
import { SANDBOX_CREDENTIALS } from "../provider-sandbox.ts";
import { deliverInOrder, postCallback } from "../sandbox/shared.ts";
import { startStack, type Stack } from "../stack.ts";
import { inspect, owedInRedis, printReport, type XaddRecord } from "./checks.ts";
import { runFaults, type FaultRecord } from "./faults.ts";
import { Load } from "./load.ts";
import { chosenProfile, WORKER_VARS } from "./profile.ts";
import { startOwnPostgres, startOwnRedis, type CrashableService } from "./services.ts";

const profile = chosenProfile(process.argv.slice(2), process.env);
const port = Number(process.env.CHAOS_PORT ?? 18280);
const run = Date.now().toString(36).slice(-6);
const startedAt = performance.now();
const elapsed = () => ((performance.now() - startedAt) / 1000).toFixed(1).padStart(6);
const log = (line: string) => console.log(`[${elapsed()} s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh connection per question: Postgres may have been restarted since the last one. */
async function query<T>(databaseUrl: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

async function inFlight(databaseUrl: string, redis: Redis): Promise<{ rows: number; entries: number; retries: number }> {
  const n = (await query<{ n: string }>(databaseUrl, "select count(*) as n from messages where status in ('pending', 'queued', 'sending', 'retry')"))[0]?.n;
  return { rows: Number(n), ...(await owedInRedis(redis)) };
}

/** Every XADD to a message stream the bridge ran, by message id: the send route's and the sweep's. */
const xadds = new Map<string, XaddRecord[]>();
function recordXadd(command: string[], outcome: PromiseSettledResult<unknown>): void {
  if (command[0]?.toUpperCase() !== "XADD" || !command[1]?.startsWith(STREAM_PREFIX)) return;
  const data = command[command.indexOf("data") + 1];
  let messageId: string | undefined;
  try {
    messageId = (JSON.parse(data ?? "") as { message_id?: string }).message_id;
  } catch {
    return;
  }
  if (!messageId) return;
  const record: XaddRecord = { time: Date.now(), ok: outcome.status === "fulfilled", entryId: outcome.status === "fulfilled" ? String(outcome.value) : undefined };
  xadds.set(messageId, [...(xadds.get(messageId) ?? []), record]);
}

const owned: { postgres?: CrashableService; redis?: CrashableService; stack?: Stack; persistTo?: string } = {};
async function cleanUp(): Promise<void> {
  await owned.stack?.stop().catch(() => {});
  await Promise.allSettled([owned.redis?.destroy(), owned.postgres?.destroy()]);
  if (owned.persistTo) rmSync(owned.persistTo, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void cleanUp().then(() => process.exit(130)));

async function main(): Promise<boolean> {
  log(`profile ${profile.name}: ${profile.messages} sends over ${profile.durationS} s, ${profile.faults.length} faults`);
  owned.postgres = await startOwnPostgres(Number(process.env.CHAOS_POSTGRES_PORT ?? port + 11));
  owned.redis = await startOwnRedis(Number(process.env.CHAOS_REDIS_PORT ?? port + 10));
  owned.persistTo = mkdtempSync(path.join(tmpdir(), "chaos-workerd-"));
  const databaseUrl = Object.assign(new URL(owned.postgres.url), { pathname: "/messaging" }).toString();
  const stack = (owned.stack = await startStack({
    port,
    databaseUrl,
    redisUrl: owned.redis.url,
    token: "chaos-token",
    bridgePort: port - 1,
    proxyPort: port - 2,
    sandboxPort: port - 3,
    persistTo: owned.persistTo,
    observeRedis: recordXadd,
    quiet: !process.env.CHAOS_VERBOSE,
    vars: { ...WORKER_VARS, TWILIO_AUTH_TOKEN: SANDBOX_CREDENTIALS.twilioAuthToken, SENDGRID_WEBHOOK_PUBLIC_KEY: SANDBOX_CREDENTIALS.sendgridWebhookPublicKey },
  }));
  const sandbox = stack.sandbox!;
  const redis = new Redis(owned.redis.url, { maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  log(`stack up at ${stack.url} (Postgres ${owned.postgres.url}, Redis ${owned.redis.url})`);

  const loadStartedAt = performance.now();
  const load = new Load(stack.url, sandbox, run);
  const redeliveries: number[] = [];
  const inboundRedeliveries: (() => Promise<void>)[] = [];
  const cron = setInterval(() => void stack.triggerCron().catch(() => {}), profile.cronIntervalS * 1000);
  // Providers redeliver: a sample of callbacks the service already answered, and every inbound SMS.
  const redeliverer = setInterval(() => {
    const answered = sandbox.callbacks().filter((c) => c.responseStatus !== undefined && c.responseStatus < 300);
    const sample = Array.from({ length: Math.min(30, answered.length) }, () => answered[Math.floor(Math.random() * answered.length)]!);
    for (const record of sample) void postCallback(record).then((answer) => redeliveries.push(answer.status ?? 0));
    for (const deliver of inboundRedeliveries.splice(0)) void deliver();
  }, profile.redeliverEveryS * 1000);
  const progress = setInterval(() => {
    const accepted = load.sends.filter((s) => s.status === 201).length;
    log(`sends answered ${load.sends.length}/${profile.messages} (201: ${accepted}), requests in flight ${load.inFlightCount}`);
  }, 10_000);

  let faults: FaultRecord[] = [];
  try {
    [, faults] = await Promise.all([
      load.drive(profile.messages, profile.durationS, profile.inboundEvery, (deliver) => inboundRedeliveries.push(deliver)),
      runFaults(
        profile.faults,
        {
          stack,
          redis: owned.redis,
          postgres: owned.postgres,
          async beforeEviction() {
            const n = (await query<{ n: string }>(databaseUrl, "select count(*) as n from messages where status = 'sending'"))[0]?.n;
            return `${n} messages were in sending when it was killed`;
          },
        },
        loadStartedAt,
        log,
      ),
    ]);
    clearInterval(progress);
    log(`load done: ${load.sends.length} sends, ${load.inbound.length} inbound webhooks`);

    // Drained: no row in flight, no stream entry unacknowledged, no retry scheduled.
    const lastFaultEnd = loadStartedAt + Math.max(...faults.map((f) => f.endedS)) * 1000;
    let drainS: number | null = null;
    while (performance.now() - lastFaultEnd < profile.drainTimeoutS * 1000) {
      const left = await inFlight(databaseUrl, redis).catch(() => null);
      if (left && left.rows + left.entries + left.retries === 0) {
        drainS = (performance.now() - lastFaultEnd) / 1000;
        break;
      }
      if (left) log(`draining: ${left.rows} messages in flight, ${left.entries} unacknowledged entries, ${left.retries} scheduled retries`);
      await sleep(left ? 5000 : 1000);
    }
    log(drainS === null ? "the queue did not drain in time" : `drained ${drainS.toFixed(1)} s after the last fault`);

    // Callbacks the service could not take (it was down) are delivered again, as SendGrid retries
    // them; then the last inbound redeliveries.
    const settleBy = Date.now() + 30_000;
    while (sandbox.callbacks().some((c) => c.mode === "post" && !c.delivered) && Date.now() < settleBy) await sleep(500);
    const unanswered = sandbox.callbacks().filter((c) => c.responseStatus === undefined || c.responseStatus >= 300);
    log(`redelivering ${unanswered.length} callbacks the service did not take`);
    await deliverInOrder(unanswered, 0);
    await Promise.all(inboundRedeliveries.splice(0).map((deliver) => deliver()));
    await sleep(1000);

    const db = new pg.Client({ connectionString: databaseUrl });
    db.on("error", () => {});
    await db.connect();
    try {
      const report = await inspect({
        sends: load.sends,
        inbound: load.inbound,
        redeliveries,
        sandbox,
        db,
        redis,
        backoff: { baseSeconds: Number(WORKER_VARS.QUEUE_RETRY_DELAY), maxSeconds: Number(WORKER_VARS.QUEUE_RETRY_MAX_DELAY) },
        faults,
        xadds,
        drainS,
      });
      printReport(report);
      const failed = report.checks.filter((c) => !c.ok);
      console.log(failed.length === 0 ? `\nchaos: all ${report.checks.length} checks passed (${elapsed().trim()} s)` : `\nchaos: ${failed.length} of ${report.checks.length} checks FAILED`);
      return failed.length === 0;
    } finally {
      await db.end();
    }
  } finally {
    clearInterval(cron);
    clearInterval(redeliverer);
    clearInterval(progress);
    redis.disconnect();
  }
}

let code = 2;
try {
  code = (await main()) ? 0 : 1;
} catch (error) {
  console.error(`chaos: the run could not be completed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(code);
