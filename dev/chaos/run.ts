// `npm run chaos [-- --profile ci]`: the local stack on a Redis and a Postgres of its own, a steady
// load of mixed sends and inbound webhooks, a fault schedule (provider 500s, 429s and hangs, Redis
// and Postgres crashed, workerd killed mid-batch, callbacks duplicated, reordered and redelivered),
// then the queue drained and every invariant checked. Exit code 1 on any violation or when the run
// hit its ceiling (profile.ceilingS: it then lists what was still open, with timelines), 2 when the
// run itself could not be set up. The stack, Redis and Postgres are stopped on every way out. See
// dev/chaos/README.md.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Redis from "ioredis";
import pg from "pg";
import { STREAM_PREFIX } from "../../src/queue/keys.ts";
import { SANDBOX_CREDENTIALS } from "../provider-sandbox.ts";
import { boundedFetch } from "../bounded-fetch.ts";
import { deliverInOrder, postCallback } from "../sandbox/shared.ts";
import { startStack, type Stack } from "../stack.ts";
import { inspect, owedInRedis, printReport, type XaddRecord } from "./checks.ts";
import { runFaults, type FaultRecord } from "./faults.ts";
import { Load } from "./load.ts";
import { chosenProfile, customerAnswers, WORKER_VARS } from "./profile.ts";
import { startOwnPostgres, startOwnRedis, type CrashableService } from "./services.ts";

const profile = chosenProfile(process.argv.slice(2), process.env);
const port = Number(process.env.CHAOS_PORT ?? 18280);
const run = Date.now().toString(36).slice(-6);
const startedAt = performance.now();
const elapsed = () => ((performance.now() - startedAt) / 1000).toFixed(1).padStart(6);
const log = (line: string) => console.log(`[${elapsed()} s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh connection per question (Postgres may have been restarted since the last one), bounded. */
async function query<T>(databaseUrl: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end().catch(() => {});
  }
}

/** Resolves `work`, or rejects once `ms` have passed: no step of the run waits without a bound. */
function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const ceiling = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms)));
  return Promise.race([work, ceiling]).finally(() => clearTimeout(timer));
}

/** The sandbox receiver standing for the customer's status webhook endpoint. */
const CUSTOMER_RECEIVER = "customer";

/** Still owed: rows on their way (held ones are counted apart: they wait for attribution, not for work). */
async function inFlight(databaseUrl: string, redis: Redis): Promise<{ rows: number; held: number; entries: number; retries: number }> {
  const [row] = await query<{ n: string; held: string }>(
    databaseUrl,
    "select count(*) filter (where status in ('pending', 'queued', 'sending', 'retry')) as n, count(*) filter (where status = 'held') as held from messages",
  );
  return { rows: Number(row?.n), held: Number(row?.held), ...(await within(10_000, "asking Redis", owedInRedis(redis))) };
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

const owned: { postgres?: CrashableService; redis?: CrashableService; stack?: Stack; persistTo?: string; load?: Load; databaseUrl?: string } = {};
let cleaned = false;
/** Stops everything the run started; bounded, and followed by the synchronous kill in any case. */
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await within(30_000, "stopping the stack", owned.stack?.stop() ?? Promise.resolve()).catch(() => {});
  await within(30_000, "stopping Redis and Postgres", Promise.allSettled([owned.redis?.destroy(), owned.postgres?.destroy()])).catch(() => {});
  killNow();
}
/** The last resort, synchronous so that it also runs from process.on("exit"): nothing outlives the run. */
function killNow(): void {
  const pid = owned.stack?.wrangler.pid;
  if (pid) {
    try {
      process.kill(-pid, "SIGKILL"); // wrangler runs in its own process group, workerd with it
    } catch {
      // already gone
    }
  }
  for (const service of [owned.redis, owned.postgres]) {
    try {
      service?.killNow();
    } catch {
      // already gone
    }
  }
  if (owned.persistTo) rmSync(owned.persistTo, { recursive: true, force: true });
}
process.on("exit", killNow);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
for (const event of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(event, (error) => {
    console.error(`chaos: ${event}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    void cleanUp().finally(() => process.exit(2));
  });
}

/**
 * The run's ceiling was reached: no new request, and a report of what was still open — the load's
 * requests without an answer, and the messages not final, each with its timeline from Postgres.
 */
async function reportOpen(): Promise<void> {
  owned.load?.stop();
  const requests = owned.load?.openRequests() ?? [];
  console.log(`\nchaos: ceiling of ${profile.ceilingS} s reached; ${requests.length} requests still without an answer`);
  for (const r of requests.slice(0, 20)) console.log(`  since ${r.startedS.toFixed(1)} s: ${r.what}`);
  if (!owned.databaseUrl) return;
  const open = await query<{ id: string; status: string; to_address: string; created_at: Date }>(
    owned.databaseUrl,
    `select id, status, to_address, created_at from messages
      where direction = 'outbound' and status not in ('delivered', 'undelivered', 'failed') order by created_at limit 500`,
  );
  console.log(`messages not final: ${open.length}${open.length === 500 ? "+" : ""} (${[...countStatuses(open)].map(([k, v]) => `${k} ${v}`).join(", ") || "none"})`);
  for (const m of open.slice(0, 10)) {
    const events = await query<{ created_at: Date; type: string; data: unknown }>(owned.databaseUrl, "select created_at, type, data from message_events where message_id = $1 order by created_at, id", [m.id]);
    console.log(`  ${m.id} ${m.status} to ${m.to_address}, created ${m.created_at.toISOString()}:`);
    for (const e of events) console.log(`    ${e.created_at.toISOString().slice(11, 23)} ${e.type} ${JSON.stringify(e.data)}`);
  }
}
function countStatuses(rows: { status: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return counts;
}

async function main(): Promise<boolean> {
  log(`profile ${profile.name}: load over ${profile.durationS} s, ${profile.faults.length} faults, ceiling ${profile.ceilingS} s`);
  owned.postgres = await startOwnPostgres(Number(process.env.CHAOS_POSTGRES_PORT ?? port + 11));
  owned.redis = await startOwnRedis(Number(process.env.CHAOS_REDIS_PORT ?? port + 10));
  owned.persistTo = mkdtempSync(path.join(tmpdir(), "chaos-workerd-"));
  const databaseUrl = (owned.databaseUrl = Object.assign(new URL(owned.postgres.url), { pathname: "/messaging" }).toString());
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
  const redis = new Redis(owned.redis.url, { maxRetriesPerRequest: 1, commandTimeout: 10_000 });
  redis.on("error", () => {});
  log(`stack up at ${stack.url} (Postgres ${owned.postgres.url}, Redis ${owned.redis.url})`);

  // The customer's status webhook endpoint, at the sandbox's receiver: it answers 500 and hangs
  // now and then (customerAnswers); every final status must reach it all the same.
  sandbox.receiver.programme(CUSTOMER_RECEIVER, customerAnswers(200_000));
  const created = await boundedFetch(
    `${stack.url}/api/v1/webhook-endpoints`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: `${sandbox.url}/__receiver/${CUSTOMER_RECEIVER}`, events: ["message.delivered", "message.undelivered", "message.failed"] }),
    },
    20_000,
  );
  if (created.status !== 201) throw new Error(`creating the customer's webhook endpoint answered ${created.status}: ${created.text}`);
  const customerEndpoint = JSON.parse(created.text) as { id: string; secret: string };

  const load = (owned.load = new Load(stack.url, sandbox, run, profile.requestTimeoutMs));
  const redeliveries: number[] = [];
  const inboundRedeliveries: (() => Promise<void>)[] = [];
  // Watchdog: wrangler's local proxy (the workerd in front of the Worker on CHAOS_PORT) was seen to
  // stop answering anything, /live included, after workerd's restart under load, while the Worker
  // behind it answered directly; requests then wait at the proxy for ever. Outside a workerd
  // restart, /live unanswered for 4 probes in a row (5 s each) restarts wrangler dev, and the
  // report counts it. Not a fault of the service, and not hidden: see the figures.
  let restarting = false;
  let watchdogRestart: Promise<void> | undefined;
  let missed = 0;
  const watchdogRestarts: string[] = [];
  const watchdog = setInterval(() => {
    if (restarting) return;
    void boundedFetch(`${stack.url}/live`, {}, 5000).then(async (answer) => {
      if (restarting) return;
      missed = answer.status === 0 ? missed + 1 : 0;
      if (missed < 4) return;
      restarting = true;
      missed = 0;
      const at = ((performance.now() - startedAt) / 1000).toFixed(0);
      log(`watchdog: /live unanswered for 4 probes through wrangler's local proxy; restarting wrangler dev`);
      watchdogRestarts.push(`at ${at} s`);
      watchdogRestart = stack.crash().catch((error) => log(`watchdog: restart failed: ${(error as Error).message}`));
      await watchdogRestart;
      watchdogRestart = undefined;
      restarting = false;
    });
  }, 5000);
  const cron = setInterval(() => void stack.triggerCron().catch(() => {}), profile.cronIntervalS * 1000);
  // Providers redeliver: a sample of callbacks the service already answered, and every inbound SMS.
  const redeliverer = setInterval(() => {
    const answered = sandbox.callbacks().filter((c) => c.responseStatus !== undefined && c.responseStatus < 300);
    const sample = Array.from({ length: Math.min(30, answered.length) }, () => answered[Math.floor(Math.random() * answered.length)]!);
    for (const record of sample) void postCallback(record).then((answer) => redeliveries.push(answer.status ?? 0));
    for (const deliver of inboundRedeliveries.splice(0)) void deliver();
  }, profile.redeliverEveryS * 1000);
  // Capacity: what this machine accepts now, so that the offered load is the same multiple of it
  // everywhere. MESSAGES fixes the number of sends instead.
  const capacity = await load.calibrate(profile.name === "ci" ? 2 : 3, log);
  const calibrationSends = load.sends.length;
  const ratePerS = profile.messages ? profile.messages / profile.durationS : Math.max(1, Math.min(profile.offerMultiple * capacity, profile.maxRatePerS));
  log(
    `measured capacity ${capacity.toFixed(1)} sends/s; offering ${ratePerS.toFixed(1)} send slots/s (${(ratePerS / Math.max(capacity, 0.1)).toFixed(2)}× capacity` +
      `${profile.messages ? ", MESSAGES" : ratePerS < profile.offerMultiple * capacity ? `, capped at the profile's ${profile.maxRatePerS}/s` : ""}) for ${profile.durationS} s`,
  );
  const loadStartedAt = performance.now();
  const progress = setInterval(() => {
    const sends = load.sends.length - calibrationSends;
    const accepted = load.sends.slice(calibrationSends).filter((s) => s.status === 201).length;
    log(`sends ${sends} (201: ${accepted}), requests in flight ${load.inFlightCount}`);
  }, 10_000);

  let faults: FaultRecord[] = [];
  try {
    [, faults] = await Promise.all([
      load.drive(ratePerS, profile.durationS, profile.inboundEvery, (deliver) => inboundRedeliveries.push(deliver)),
      runFaults(
        profile.faults,
        {
          stack,
          redis: owned.redis,
          postgres: owned.postgres,
          async beforeEviction() {
            await watchdogRestart; // one restart at a time
            restarting = true; // the workerd kill is the schedule's, not the watchdog's business
            const n = (await query<{ n: string }>(databaseUrl, "select count(*) as n from messages where status = 'sending'"))[0]?.n;
            return `${n} messages were in sending when it was killed`;
          },
          afterEviction() {
            restarting = false;
            missed = 0;
          },
        },
        loadStartedAt,
        log,
      ),
    ]);
    clearInterval(progress);
    log(`load done: ${load.sends.length - calibrationSends} sends (+${calibrationSends} in calibration), ${load.inbound.length} inbound webhooks`);

    // Drained: no row in flight, no stream entry unacknowledged, no retry scheduled.
    const lastFaultEnd = loadStartedAt + Math.max(...faults.map((f) => f.endedS)) * 1000;
    let drainS: number | null = null;
    while (performance.now() - lastFaultEnd < profile.drainTimeoutS * 1000) {
      const left = await inFlight(databaseUrl, redis).catch(() => null);
      if (left && left.rows + left.entries + left.retries === 0) {
        drainS = (performance.now() - lastFaultEnd) / 1000;
        break;
      }
      if (left) log(`draining: ${left.rows} messages in flight (${left.held} held), ${left.entries} unacknowledged entries, ${left.retries} scheduled retries`);
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

    // The status webhooks still owed to the customer (its failures and hangs retried on the
    // run's short schedule, about 90 s at most), the redelivered callbacks' included, are waited for
    // apart from the queue.
    let webhooksSettledS: number | null = null;
    const webhooksBy = performance.now() + 180_000;
    while (performance.now() < webhooksBy) {
      const [row] = await query<{ n: string }>(databaseUrl, "select count(*) as n from webhook_events where status = 'pending'").catch(() => [undefined]);
      if (row && Number(row.n) === 0) {
        webhooksSettledS = (performance.now() - lastFaultEnd) / 1000;
        break;
      }
      if (row) log(`status webhooks still owed: ${row.n}`);
      await sleep(5000);
    }

    const db = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, query_timeout: 60_000 });
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
        customer: { endpointId: customerEndpoint.id, secret: customerEndpoint.secret, receiver: CUSTOMER_RECEIVER, settledS: webhooksSettledS },
        foreignSids: load.foreignSids,
        watchdogRestarts,
        capacity: { measuredPerS: capacity, offeredPerS: ratePerS, multiple: profile.offerMultiple, calibrationSends },
        loadStartedAtMs: Date.now() - (performance.now() - loadStartedAt),
      });
      printReport(report);
      // Everything the verdicts came from, for a look afterwards (the run's databases are deleted).
      const evidenceFile = path.join(tmpdir(), `chaos-${run}.json`);
      const [storedMessages, events] = await Promise.all([
        db.query("select * from messages order by created_at").then((r) => r.rows),
        db.query("select * from message_events order by created_at, id").then((r) => r.rows),
      ]);
      writeFileSync(
        evidenceFile,
        JSON.stringify({ profile, faults, sends: load.sends, inbound: load.inbound, requests: sandbox.requests(), callbacks: sandbox.callbacks(), accepted: sandbox.accepted(), messages: storedMessages, events }),
      );
      console.log(`\nevidence (sends, provider record, messages and events): ${evidenceFile}`);
      const failed = report.checks.filter((c) => !c.ok);
      console.log(failed.length === 0 ? `\nchaos: all ${report.checks.length} checks passed (${elapsed().trim()} s)` : `\nchaos: ${failed.length} of ${report.checks.length} checks FAILED`);
      return failed.length === 0;
    } finally {
      await db.end();
    }
  } finally {
    clearInterval(cron);
    clearInterval(watchdog);
    clearInterval(redeliverer);
    clearInterval(progress);
    redis.disconnect();
  }
}

let code = 2;
let ceilingTimer: NodeJS.Timeout | undefined;
const ceiling = new Promise<"ceiling">((resolve) => (ceilingTimer = setTimeout(() => resolve("ceiling"), profile.ceilingS * 1000)));
try {
  const outcome = await Promise.race([main(), ceiling]);
  if (outcome === "ceiling") {
    code = 1;
    await within(60_000, "the report of what was open", reportOpen()).catch((error) => console.error(`chaos: ${(error as Error).message}`));
    console.log(`\nchaos: FAILED, the run did not finish within its ceiling of ${profile.ceilingS} s`);
  } else code = outcome ? 0 : 1;
} catch (error) {
  console.error(`chaos: the run could not be completed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  clearTimeout(ceilingTimer);
  await cleanUp();
}
process.exit(code);
