// The worker's figures (docs/architecture.md): Redis commands per delivered message at steady load,
// Redis commands per idle minute, enqueue → provider-call latency at light load, and throughput
// of 1 and 4 shards with the simulator at 100 ms, next to BullMQ over the same Redis with the
// same concurrency.
//   npm run bench:worker       (MESSAGES, IDLE_S, THROUGHPUT_MESSAGES, SECTIONS, SENDERS, PORT optional)
// bench/all.ts imports runWorker and uses the returned figures.
import pg from "pg";
import Redis from "ioredis";
import { Queue, Worker } from "bullmq";
import { claimRedisDb } from "../dev/redis-db.ts";
import { expectCreated, isMain, percentile, postJson, smsBody, startBenchStack, waitUntilSent, REDIS_URL, type BenchStack } from "./lib.ts";

export const CONCURRENCY = 6;
/** latency is measured from the `enqueued` event to the claim at this many light-load messages */
const LATENCY_MESSAGES = 200;

export type WorkerSection = "commands" | "idle" | "latency" | "throughput" | "bullmq";
export const WORKER_SECTIONS: WorkerSection[] = ["commands", "idle", "latency", "throughput", "bullmq"];

export interface WorkerOptions {
  port: number;
  messages: number;
  idleS: number;
  throughputMessages: number;
  /** which parts to run */
  sections: WorkerSection[];
  /** concurrent senders of the commands-per-message part, one run each */
  senders: number[];
}

export interface WorkerResult {
  concurrency: number;
  commands: { senders: number; messages: number; msgPerS: number; commandsPerMessage: number; requestsPerMessage: number }[];
  idle?: { minutes: number; requestsPerMinute: number; commandsPerMinute: number };
  latency?: { messages: number; p50Ms: number; p99Ms: number };
  throughput: { shards: number; messages: number; msgPerS: number; modelPerS: number }[];
  bullmq?: { version: string; jobs: number; jobsPerS: number; commandsPerJob: number; ratioOneShard?: number };
}

export function workerOptionsFromEnv(): WorkerOptions {
  return {
    port: Number(process.env.PORT ?? 8181),
    messages: Number(process.env.MESSAGES ?? 5000),
    idleS: Number(process.env.IDLE_S ?? 180),
    throughputMessages: Number(process.env.THROUGHPUT_MESSAGES ?? 1200),
    sections: (process.env.SECTIONS ?? WORKER_SECTIONS.join(",")).split(",") as WorkerSection[],
    senders: (process.env.SENDERS ?? "10").split(",").map(Number),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Total commands Redis has executed (all clients, scripts' inner commands included). */
async function commandsExecuted(redis: Redis): Promise<number> {
  const info = await redis.info("commandstats");
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] !== "info") total += Number(match[2]);
  }
  return total;
}

async function sendMany(stack: BenchStack, count: number, parallel: number) {
  let next = 0;
  const url = `${stack.url}/api/v1/messages/send`;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        // More senders than MAX_SENDS_IN_FLIGHT: a refusal at capacity stored nothing and says when
        // to come back, so a sender does what a client would and tries again after Retry-After.
        let answer = await postJson(url, smsBody());
        for (let tries = 0; answer.status === 503 && answer.text.includes('"overloaded"') && tries < 30; tries++) {
          await new Promise((r) => setTimeout(r, 1000));
          answer = await postJson(url, smsBody());
        }
        expectCreated(answer);
      }
    }),
  );
}

/** A backlog: rows stored as the send route stores them, and their stream entries, without doorbells. */
async function preload(stack: BenchStack, db: pg.Client, count: number) {
  const { rows } = await db.query(`
    with conv as (
      insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, last_message_at, message_count)
      values (gen_random_uuid(), '+12025550100', '+13035550100', 'sms', 'direct', 'phone:+12025550100|+13035550100', now(), $1)
      returning id)
    insert into messages (id, conversation_id, provider, direction, status, type, from_address, to_address, body, segments)
    select gen_random_uuid(), conv.id, 'twilio', 'outbound', 'pending', 'sms', '+12025550100', '+13035550100', 'bench ' || g, 1
      from conv, generate_series(1, $1) g
    returning id`, [count]);
  const pipeline = stack.redis.pipeline();
  const at = new Date().toISOString();
  for (const row of rows) pipeline.xadd("message_queue:sms", "*", "data", JSON.stringify({ message_id: row.id, retry_count: 0, scheduled_at: at }));
  await pipeline.exec();
}

async function withStack<T>(port: number, vars: Record<string, string>, work: (stack: BenchStack, db: pg.Client) => Promise<T>): Promise<T> {
  const stack = await startBenchStack(port, vars);
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    return await work(stack, db);
  } finally {
    await db.end();
    await stack.close();
  }
}

export async function runWorker(options: WorkerOptions): Promise<WorkerResult> {
  const { port, messages, idleS, throughputMessages, senders } = options;
  const sections = new Set(options.sections);
  const admin = new Redis(REDIS_URL);
  const report = (line: string) => console.log(line);
  const result: WorkerResult = { concurrency: CONCURRENCY, commands: [], throughput: [] };

  // In finally, so that a failing section does not leave the process hanging on this client.
  try {
    // 1. Commands per delivered message at steady load, for each number of concurrent senders.
    if (sections.has("commands")) {
      for (const parallel of senders) {
        await withStack(port, {}, async (stack, db) => {
          await sendMany(stack, 50, 5);
          await waitUntilSent(db, 50);
          const before = await commandsExecuted(admin);
          stack.bridge.resetStats();
          const started = Date.now();
          await sendMany(stack, messages, parallel);
          await waitUntilSent(db, messages + 50);
          const seconds = (Date.now() - started) / 1000;
          await sleep(1000);
          const commands = (await commandsExecuted(admin)) - before;
          const requests = stack.bridge.stats();
          result.commands.push({ senders: parallel, messages, msgPerS: messages / seconds, commandsPerMessage: commands / messages, requestsPerMessage: requests.requests / messages });
          report(`steady load, ${messages} messages from ${parallel} concurrent senders (${(messages / seconds).toFixed(0)} msg/s), simulator 0 ms:`);
          report(`  redis commands per delivered message  ${(commands / messages).toFixed(3)}   (budget ≤ 1.05; INFO commandstats, script-inner commands included)`);
          report(`  redis requests per delivered message  ${(requests.requests / messages).toFixed(3)}   (HTTP requests to the Upstash bridge)`);
        });
      }
    }

    // 1b. Idle: nothing to do; the cron fires once a minute as in production.
    if (sections.has("idle")) {
      await withStack(port, {}, async (stack, db) => {
        await sendMany(stack, 20, 5);
        await waitUntilSent(db, 20);
        await sleep(2000);
        const idleBefore = await commandsExecuted(admin);
        stack.bridge.resetStats();
        const started = Date.now();
        // One cron at the start of each whole minute of the window, at fixed times: a loop that
        // checks the clock could fire once more in a timer that wakes a millisecond early.
        for (let minute = 0; minute < Math.ceil(idleS / 60); minute++) {
          await stack.triggerCron();
          await sleep(Math.max(0, started + Math.min(idleS * 1000, (minute + 1) * 60_000) - Date.now()));
        }
        const idleMinutes = (Date.now() - started) / 60_000;
        const idleCommands = (await commandsExecuted(admin)) - idleBefore;
        result.idle = { minutes: idleMinutes, requestsPerMinute: stack.bridge.stats().requests / idleMinutes, commandsPerMinute: idleCommands / idleMinutes };
        report(`idle, ${idleMinutes.toFixed(1)} min with the cron every minute:`);
        report(`  redis requests per idle minute        ${result.idle.requestsPerMinute.toFixed(2)}   (budget ≤ 1)`);
        report(`  redis commands per idle minute        ${result.idle.commandsPerMinute.toFixed(1)}   (inside that one script)`);
      });
    }

    // 2. Enqueue → provider call at light load: from the `enqueued` event (same commit as the row,
    // just before XADD) to the claim's `status_changed` to sending (just before the provider call).
    if (sections.has("latency")) await withStack(port, {}, async (stack, db) => {
      for (let i = 0; i < LATENCY_MESSAGES; i++) {
        await sendMany(stack, 1, 1);
        await sleep(100);
      }
      await waitUntilSent(db, LATENCY_MESSAGES);
      const { rows } = await db.query(`
        select extract(epoch from (c.created_at - e.created_at)) * 1000 as ms
          from message_events e join message_events c on c.message_id = e.message_id
         where e.type = 'enqueued' and c.type = 'status_changed' and c.data->>'to' = 'sending'`);
      const ms = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
      result.latency = { messages: LATENCY_MESSAGES, p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
      report(`enqueue → provider call, light load (${LATENCY_MESSAGES} messages, one every ~100 ms):`);
      report(`  p50 ${result.latency.p50Ms.toFixed(1)} ms   p99 ${result.latency.p99Ms.toFixed(1)} ms   (budget ≤ 50 / ≤ 250)`);
    });

    // 3. Throughput with the simulator at 100 ms, 1 and 4 shards. The backlog is stored and put on
    // the stream first (the send route would otherwise be the bottleneck), then the cron's sweep
    // wakes every shard; the rate is attempts over the time from the first claim to the last outcome.
    const throughput: Record<string, number> = {};
    for (const shards of sections.has("throughput") ? [1, 4] : []) {
      await withStack(port, { SIMULATOR_LATENCY_MS: "100", SHARDS_PER_TYPE: String(shards), QUEUE_CONCURRENCY: String(CONCURRENCY) }, async (stack, db) => {
        await preload(stack, db, throughputMessages);
        await stack.triggerCron();
        await waitUntilSent(db, throughputMessages);
        // From the first claim (just before the first provider calls) to the last recorded outcome.
        const { rows } = await db.query(`
          select extract(epoch from (max(created_at) filter (where type = 'attempt')
                                     - min(created_at) filter (where type = 'status_changed' and data->>'to' = 'sending'))) as seconds,
                 count(*) filter (where type = 'attempt')::int as n
            from message_events`);
        const rate = rows[0].n / Number(rows[0].seconds);
        throughput[`${shards}`] = rate;
        result.throughput.push({ shards, messages: throughputMessages, msgPerS: rate, modelPerS: (shards * CONCURRENCY) / 0.1 });
        report(`throughput, ${shards} shard(s), concurrency ${CONCURRENCY}, simulator 100 ms, ${throughputMessages} messages:`);
        report(`  ${rate.toFixed(1)} messages/s   (model: ${shards} × ${CONCURRENCY} / 0.1 s = ${(shards * CONCURRENCY) / 0.1}/s)`);
      });
    }

    // 4. BullMQ, same Redis, same concurrency, same 100 ms job.
    if (sections.has("bullmq")) {
      const claimed = await claimRedisDb(REDIS_URL);
      const redisUrl = new URL(REDIS_URL);
      const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), db: claimed.db, maxRetriesPerRequest: null };
      const queue = new Queue("bench", { connection });
      const before = await commandsExecuted(admin);
      let done = 0;
      let first = 0;
      let last = 0;
      const worker = new Worker(
        "bench",
        async () => {
          if (!first) first = Date.now();
          await sleep(100);
          last = Date.now();
          done++;
        },
        { connection, concurrency: CONCURRENCY },
      );
      const started = Date.now();
      await queue.addBulk(Array.from({ length: throughputMessages }, (_, i) => ({ name: "send", data: { i } })));
      while (done < throughputMessages && Date.now() - started < 600_000) await sleep(100);
      const rate = done / ((last - first) / 1000);
      const commands = ((await commandsExecuted(admin)) - before) / throughputMessages;
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await claimed.release();
      const version = (await import("bullmq/package.json", { with: { type: "json" } })).default.version;
      result.bullmq = { version, jobs: throughputMessages, jobsPerS: rate, commandsPerJob: commands, ratioOneShard: throughput["1"] ? throughput["1"] / rate : undefined };
      report(`BullMQ ${version}, 1 worker, concurrency ${CONCURRENCY}, 100 ms job, ${throughputMessages} jobs:`);
      report(`  ${rate.toFixed(1)} jobs/s, ${commands.toFixed(2)} redis commands per job`);
      if (throughput["1"]) report(`  ratio, QueueWorker 1 shard / BullMQ: ${(throughput["1"] / rate).toFixed(2)}`);
    }
  } finally {
    admin.disconnect();
  }
  return result;
}

if (isMain(import.meta.url)) await runWorker(workerOptionsFromEnv());
