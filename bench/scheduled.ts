// Scheduled-send lateness: how long after its send_at a scheduled message is sent, on an idle
// local stack (wrangler dev, the in-Worker simulator provider with no latency). SCHEDULED_MESSAGES
// sends are scheduled a few seconds ahead, spread over about a second; each is sent by its shard's
// Durable Object alarm (no test drain, no cron). Lateness = sent_at - send_at, both read from
// Postgres (sent_at is Postgres' clock when the outcome is recorded, after the provider call).
//   npm run bench:scheduled       (PORT, SCHEDULED_MESSAGES, SCHEDULED_AHEAD_MS optional)
// Run alone, it writes its section into the existing bench/results.json (and the report), leaving
// the other sections as their last run left them; bench/all.ts imports runScheduled.
import { readFile } from "node:fs/promises";
import pg from "pg";
import { isMain, percentile, startBenchStack } from "./lib.ts";
import { RESULTS_JSON, writeReport, type BenchResults } from "./report.ts";

export interface ScheduledOptions {
  port: number;
  messages: number;
  /** how far ahead the first send_at is */
  aheadMs: number;
}

export interface ScheduledResult {
  messages: number;
  aheadMs: number;
  sent: number;
  /** sent_at - send_at, ms */
  p50Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
  measuredAt: string;
}

export function scheduledOptionsFromEnv(): ScheduledOptions {
  return {
    port: Number(process.env.PORT ?? 8183),
    messages: Number(process.env.SCHEDULED_MESSAGES ?? 50),
    aheadMs: Number(process.env.SCHEDULED_AHEAD_MS ?? 4000),
  };
}

export async function runScheduled({ port, messages, aheadMs }: ScheduledOptions): Promise<ScheduledResult> {
  const stack = await startBenchStack(port);
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    const post = (body: unknown) =>
      fetch(`${stack.url}/api/v1/messages/send`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    // Warm up: the isolate, its connections and the shard's Durable Object.
    for (let i = 0; i < 5; i++) await post({ type: "sms", from: "+12025550100", to: `+1303555${String(i).padStart(4, "0")}`, body: "warm-up" });
    await new Promise((r) => setTimeout(r, 1000));

    const start = Date.now() + aheadMs;
    const spread = 1000;
    const ids: string[] = [];
    for (let i = 0; i < messages; i++) {
      const n = String(i).padStart(4, "0");
      const sendAt = new Date(start + Math.round((i * spread) / messages)).toISOString();
      const res = await post({ type: "sms", from: "+12025550199", to: `+1303556${n}`, body: "scheduled bench", send_at: sendAt });
      if (res.status !== 201) throw new Error(`scheduled send answered ${res.status}: ${await res.text()}`);
      ids.push(((await res.json()) as { id: string }).id);
    }
    if (Date.now() > start) throw new Error(`storing ${messages} scheduled sends took longer than ${aheadMs} ms; raise SCHEDULED_AHEAD_MS`);

    // Ceiling, not budget: wait until every one has left `scheduled`/`sending`.
    const deadline = start + spread + 120_000;
    let rows: { status: string; late_ms: number | null }[] = [];
    for (;;) {
      rows = (
        await db.query<{ status: string; late_ms: number | null }>(
          `select status, (extract(epoch from (sent_at - send_at)) * 1000)::float8 as late_ms from messages where id = any($1::uuid[])`,
          [ids],
        )
      ).rows;
      if (rows.every((r) => r.status !== "scheduled" && r.status !== "sending")) break;
      if (Date.now() > deadline) throw new Error(`not all sent within the ceiling: ${JSON.stringify(rows.filter((r) => r.status === "scheduled").length)} still scheduled`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const late = rows.filter((r) => r.status === "sent" && r.late_ms !== null).map((r) => Number(r.late_ms)).sort((a, b) => a - b);
    const result: ScheduledResult = {
      messages,
      aheadMs,
      sent: late.length,
      p50Ms: percentile(late, 50),
      p99Ms: percentile(late, 99),
      minMs: late[0] ?? NaN,
      maxMs: late.at(-1) ?? NaN,
      measuredAt: new Date().toISOString(),
    };
    console.log(
      `scheduled sends: ${result.sent}/${messages} sent; lateness (sent_at - send_at) p50 ${result.p50Ms.toFixed(0)} ms, p99 ${result.p99Ms.toFixed(0)} ms, min ${result.minMs.toFixed(0)} ms, max ${result.maxMs.toFixed(0)} ms`,
    );
    return result;
  } finally {
    await db.end().catch(() => undefined);
    await stack.close();
  }
}

if (isMain(import.meta.url)) {
  const result = await runScheduled(scheduledOptionsFromEnv());
  const previous = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as BenchResults & { figures?: unknown };
  delete previous.figures;
  await writeReport({ ...previous, scheduled: result });
  console.log(`wrote the scheduled section into ${RESULTS_JSON.pathname}`);
  process.exit(0);
}
