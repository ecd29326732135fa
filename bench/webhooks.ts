// Status-webhook delivery latency (issue 15): how long after a status change is committed its
// signed webhook reaches the API user's endpoint. A local receiver (a node http server) verifies
// every delivery with the `standardwebhooks` package, as a customer would; the endpoint is
// registered through POST /api/v1/webhook-endpoints and subscribes to message.sent. WEBHOOK_MESSAGES
// SMS are sent through the in-Worker simulator (no latency), one every WEBHOOK_INTERVAL_MS; each
// becomes `sent` in the worker's outcome statement, which writes the event's outbox row
// (webhook_events) in the same statement, then rings the WebhookWorker Durable Object.
//
// Latency = receipt at the receiver (this process's clock) - webhook_events.created_at (Postgres'
// now() of the statement that recorded `sent`: the same machine's clock; the statement's own run
// time before its commit is counted in, so the figure is at most that much pessimistic).
//
// Two phases on one stack, each with its own endpoint and receiver secret:
//   plain: every delivery answered 200;
//   retry: the receiver answers 500 to the first attempt of every 10th event (by order of first
//          receipt); those come back after WEBHOOK_RETRY_SCHEDULE's first delay (5 s by default),
//          and each must arrive exactly twice, with the same webhook-id and a valid signature both
//          times. Their latency (to the second, successful, receipt) is reported apart.
//   npm run bench:webhooks        (PORT, WEBHOOK_MESSAGES, WEBHOOK_INTERVAL_MS optional)
// Run alone, it writes its section and its two budget keys into the existing bench/results.json
// (and the report), leaving the other sections as their last run left them; bench/all.ts imports
// runWebhooks.
import http from "node:http";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { Webhook } from "standardwebhooks";
import { verdict, type Budget } from "./budgets.ts";
import { isMain, percentile, postJson, startBenchStack, type BenchStack } from "./lib.ts";
import { RESULTS_JSON, writeReport, type BenchResults } from "./report.ts";

export interface WebhooksOptions {
  port: number;
  /** messages per phase */
  messages: number;
  /** pause between sends, ms */
  intervalMs: number;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface WebhooksResult {
  messages: number;
  intervalMs: number;
  plain: LatencySummary & {
    /** events delivered (2xx) / events written to the outbox */
    delivered: number;
    events: number;
    /** deliveries beyond the first of an event (at least once: should be 0 on a healthy run) */
    duplicates: number;
    badSignatures: number;
  };
  retry: {
    events: number;
    delivered: number;
    /** events answered 500 on their first attempt */
    failedFirst: number;
    /** of those, received exactly twice with the same webhook-id, both signatures valid */
    deliveredTwiceVerified: number;
    /** the most receipts of any one event (must be ≤ 2) */
    maxReceipts: number;
    badSignatures: number;
    /** created → second (successful) receipt of the events failed once */
    retried: LatencySummary;
    /** the phase's other events, created → first receipt */
    others: LatencySummary;
    /** first WEBHOOK_RETRY_SCHEDULE delay, s */
    retryDelayS: number;
  };
  measuredAt: string;
}

export function webhooksOptionsFromEnv(): WebhooksOptions {
  return {
    port: Number(process.env.PORT ?? 8185),
    messages: Number(process.env.WEBHOOK_MESSAGES ?? 200),
    intervalMs: Number(process.env.WEBHOOK_INTERVAL_MS ?? 50),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock epoch ms with sub-millisecond resolution (compared with Postgres' timestamps). */
const epochNow = () => performance.timeOrigin + performance.now();

interface Receipt {
  at: number;
  verified: boolean;
  answered: number;
}

/** The customer's endpoint: verifies each delivery, answers as its mode says, records each receipt by webhook-id. */
async function startReceiver() {
  let verifier: Webhook | null = null;
  let failEvery = 0;
  const receipts = new Map<string, Receipt[]>();
  const failedFirst = new Set<string>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const at = epochNow();
    const body = Buffer.concat(chunks).toString("utf8");
    const id = String(req.headers["webhook-id"] ?? "");
    let verified = false;
    try {
      verifier!.verify(body, {
        "webhook-id": id,
        "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
        "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
      });
      verified = true;
    } catch {
      verified = false;
    }
    let list = receipts.get(id);
    if (!list) receipts.set(id, (list = []));
    // The ordinal of a new event is the number of distinct ids seen so far.
    const fail = failEvery > 0 && list.length === 0 && (receipts.size % failEvery === 0);
    if (fail) failedFirst.add(id);
    const answered = fail ? 500 : verified ? 200 : 401;
    list.push({ at, verified, answered });
    res.writeHead(answered, { "content-type": "text/plain" }).end(answered === 200 ? "ok" : "no");
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    receipts,
    failedFirst,
    /** a fresh phase: this secret, this failure pattern, nothing received yet */
    reset(secret: string, every: number) {
      verifier = new Webhook(secret);
      failEvery = every;
      receipts.clear();
      failedFirst.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function summary(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN };
}

const fmt = (s: LatencySummary) => `p50 ${s.p50Ms.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms (${s.count})`;

interface EventRow {
  id: string;
  created_ms: number;
  status: string;
  attempts: number;
}

/**
 * One phase: a fresh endpoint to the receiver, `messages` sends, then waits (a ceiling, not a
 * budget) until every event of the endpoint has left `pending`. Returns the endpoint's events.
 */
async function phase(stack: BenchStack, db: pg.Client, receiver: Awaited<ReturnType<typeof startReceiver>>, opts: WebhooksOptions, failEvery: number, tag: string) {
  const created = await postJson(`${stack.url}/api/v1/webhook-endpoints`, JSON.stringify({ url: receiver.url, events: ["message.sent"], description: `bench ${tag}` }));
  if (created.status !== 201) throw new Error(`endpoint registration answered ${created.status}: ${created.text.slice(0, 200)}`);
  const endpoint = JSON.parse(created.text) as { id: string; secret: string };
  receiver.reset(endpoint.secret, failEvery);

  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < opts.messages; i++) {
    await sleep(Math.max(0, started + i * opts.intervalMs - performance.now()));
    const n = String(i).padStart(4, "0");
    const body = JSON.stringify({ type: "sms", from: `+1202555${n}`, to: `+1303${tag === "plain" ? "555" : "556"}${n}`, body: `webhook bench ${tag}` });
    inFlight.push(
      postJson(`${stack.url}/api/v1/messages/send`, body).then((a) => {
        if (a.status !== 201) throw new Error(`send answered ${a.status}: ${a.text.slice(0, 200)}`);
      }),
    );
  }
  await Promise.all(inFlight);

  const deadline = Date.now() + 120_000;
  let rows: EventRow[] = [];
  for (;;) {
    rows = (
      await db.query<EventRow>(
        `select id, (extract(epoch from created_at) * 1000)::float8 as created_ms, status, attempts from webhook_events where endpoint_id = $1`,
        [endpoint.id],
      )
    ).rows;
    if (rows.length >= opts.messages && rows.every((r) => r.status !== "pending")) break;
    if (Date.now() > deadline) throw new Error(`${tag}: ${rows.filter((r) => r.status === "pending").length} of ${rows.length} events still pending (${opts.messages} expected) after the ceiling`);
    await sleep(200);
  }
  await sleep(200); // the receiver has answered; the record statement is the worker's next step
  return { endpointId: endpoint.id, rows };
}

export async function runWebhooks(opts: WebhooksOptions): Promise<WebhooksResult> {
  const receiver = await startReceiver();
  const stack = await startBenchStack(opts.port);
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    // Warm up: the isolate, its connections, the shard's and the webhook worker's Durable Objects.
    const warm = await postJson(`${stack.url}/api/v1/webhook-endpoints`, JSON.stringify({ url: receiver.url, events: ["message.sent"], description: "bench warm-up" }));
    if (warm.status !== 201) throw new Error(`endpoint registration answered ${warm.status}: ${warm.text.slice(0, 200)}`);
    const warmEndpoint = JSON.parse(warm.text) as { id: string; secret: string };
    receiver.reset(warmEndpoint.secret, 0);
    for (let i = 0; i < 10; i++) await postJson(`${stack.url}/api/v1/messages/send`, JSON.stringify({ type: "sms", from: "+12025550100", to: `+1303557${String(i).padStart(4, "0")}`, body: "warm-up" }));
    const warmDeadline = Date.now() + 60_000;
    while (receiver.receipts.size < 10 && Date.now() < warmDeadline) await sleep(100);
    // Endpoints get every message's events: the warm-up's must not be delivered during the phases.
    await fetch(`${stack.url}/api/v1/webhook-endpoints/${warmEndpoint.id}`, { method: "DELETE" }).then((r) => r.arrayBuffer());
    await sleep(500);

    // Plain: every delivery answered 200.
    const plainRun = await phase(stack, db, receiver, opts, 0, "plain");
    const plainLatency: number[] = [];
    let duplicates = 0;
    let plainBad = 0;
    for (const row of plainRun.rows) {
      const got = receiver.receipts.get(row.id) ?? [];
      const ok = got.find((r) => r.answered === 200);
      if (ok) plainLatency.push(ok.at - Number(row.created_ms));
      duplicates += Math.max(0, got.length - 1);
      plainBad += got.filter((r) => !r.verified).length;
    }
    const plain = {
      ...summary(plainLatency),
      delivered: plainRun.rows.filter((r) => r.status === "delivered").length,
      events: plainRun.rows.length,
      duplicates,
      badSignatures: plainBad,
    };
    console.log(`plain: ${plain.delivered}/${plain.events} events delivered; created → received ${fmt(plain)}; ${duplicates} duplicate receipts, ${plainBad} bad signatures`);
    await fetch(`${stack.url}/api/v1/webhook-endpoints/${plainRun.endpointId}`, { method: "DELETE" }).then((r) => r.arrayBuffer());
    await sleep(500);

    // Retry: the first attempt of every 10th event is answered 500.
    const retryRun = await phase(stack, db, receiver, opts, 10, "retry");
    const retried: number[] = [];
    const others: number[] = [];
    let twiceVerified = 0;
    let maxReceipts = 0;
    let retryBad = 0;
    for (const row of retryRun.rows) {
      const got = receiver.receipts.get(row.id) ?? [];
      maxReceipts = Math.max(maxReceipts, got.length);
      retryBad += got.filter((r) => !r.verified).length;
      const ok = got.find((r) => r.answered === 200);
      if (receiver.failedFirst.has(row.id)) {
        if (got.length === 2 && got.every((r) => r.verified) && got[1]!.answered === 200) twiceVerified++;
        if (ok) retried.push(ok.at - Number(row.created_ms));
      } else if (ok) others.push(ok.at - Number(row.created_ms));
    }
    const retryDelayS = Number((process.env.WEBHOOK_RETRY_SCHEDULE ?? "5").split(",")[0]);
    const retry = {
      events: retryRun.rows.length,
      delivered: retryRun.rows.filter((r) => r.status === "delivered").length,
      failedFirst: receiver.failedFirst.size,
      deliveredTwiceVerified: twiceVerified,
      maxReceipts,
      badSignatures: retryBad,
      retried: summary(retried),
      others: summary(others),
      retryDelayS,
    };
    console.log(
      `retry: ${retry.delivered}/${retry.events} delivered; ${retry.failedFirst} answered 500 first, ${twiceVerified} of them received exactly twice with valid signatures (most receipts of one event: ${maxReceipts}); ${retryBad} bad signatures`,
    );
    console.log(`  failed once (retry after ${retryDelayS} s): created → received ${fmt(retry.retried)}`);
    console.log(`  the others:                   created → received ${fmt(retry.others)}`);
    return { messages: opts.messages, intervalMs: opts.intervalMs, plain, retry, measuredAt: new Date().toISOString() };
  } finally {
    await db.end().catch(() => undefined);
    await stack.close();
    await receiver.close();
  }
}

/** The budget keys this benchmark owns, from its result (bench/budgets.ts declares the limits). */
export function webhookBudgets(r: WebhooksResult): Record<"webhook_delivery_p50_ms" | "webhook_delivery_p99_ms", Budget> {
  // A run that lost or doubled events, or failed a signature, is not within budget whatever its latency.
  const sound = r.plain.delivered === r.plain.events && r.plain.events === r.messages && r.plain.badSignatures === 0;
  const judge = (key: "webhook_delivery_p50_ms" | "webhook_delivery_p99_ms", value: number) => {
    const b = verdict(key, value);
    return { ...b, met: b.met === null ? null : b.met && sound };
  };
  return { webhook_delivery_p50_ms: judge("webhook_delivery_p50_ms", r.plain.p50Ms), webhook_delivery_p99_ms: judge("webhook_delivery_p99_ms", r.plain.p99Ms) };
}

if (isMain(import.meta.url)) {
  const result = await runWebhooks(webhooksOptionsFromEnv());
  const budgets = webhookBudgets(result);
  for (const [key, b] of Object.entries(budgets)) console.log(`  ${key.padEnd(32)} ${b.value.toFixed(1).padStart(9)}  budget ≤ ${b.budget}  ${b.met ? "met" : "NOT MET"}`);
  const previous = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as BenchResults & { figures?: unknown };
  delete previous.figures;
  await writeReport({ ...previous, webhooks: result, budgets: { ...previous.budgets, ...budgets } });
  console.log(`wrote the webhooks section and its budgets into ${RESULTS_JSON.pathname}`);
  process.exit(0);
}
