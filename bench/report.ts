// Turns the figures of one `npm run bench` into bench/results.md (budgets judged from the numbers)
// and bench/results.svg (vega-lite, rendered headless). bench/all.ts calls writeReport after the
// run; `npx tsx bench/report.ts` renders both again from bench/results.json without re-running
// anything (for changing the layout without another ten-minute run).
import { readFile, writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { BUDGET_KEYS, BUDGET_LIMITS, type Budget, type BudgetKey, type BudgetsDetail } from "./budgets.ts";
import type { ColdStartResult } from "./cold-start.ts";
import type { ListResult } from "./list-1m.ts";
import { isMain } from "./lib.ts";
import type { ScheduledResult } from "./scheduled.ts";
import type { SendPathResult } from "./send-path.ts";
import type { WebhooksResult } from "./webhooks.ts";
import type { WorkerResult } from "./worker.ts";

export interface BundleResult {
  /** the files measured: the worker modules wrangler wrote, without source maps */
  files: string[];
  rawKiB: number;
  /** node:zlib gzip at its default level, which is what wrangler's own "gzip:" figure uses */
  gzipKiB: number;
  /** wrangler's own "Total Upload" line, kept as a cross-check */
  wranglerSays?: string;
}

export interface BenchResults {
  meta: {
    date: string;
    commit: string;
    uncommitted: boolean;
    profile: "full" | "quick";
    /** the counts in effect, after the profile's defaults and any environment overrides */
    knobs: Record<string, string | number>;
    machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string; redis?: string; postgres?: string };
    /** wall-clock seconds of each benchmark and of the whole run */
    seconds: Record<string, number>;
  };
  sendPath?: SendPathResult;
  worker?: WorkerResult;
  coldStart?: ColdStartResult;
  bundle?: BundleResult;
  scheduled?: ScheduledResult;
  webhooks?: WebhooksResult;
  /** bench/list-1m.ts, run alone (npm run bench:list); npm run bench carries the last one over */
  list1m?: ListResult;
  /** issue 14's keys and issue 15's, each { value, budget, met } (bench/budgets.ts; bench/README.md says how) */
  budgets?: Partial<Record<BudgetKey, Budget>>;
  budgetsDetail?: BudgetsDetail;
  /** benchmark name → error message, for the ones that failed */
  errors: Record<string, string>;
}

export interface Figure {
  figure: string;
  budget: string;
  measured: string;
  /** null: no budget to meet (reported only) or not measured */
  met: boolean | null;
  how: string;
}

// The budgets of docs/architecture.md, as bench/README.md's "Figures" table states them.
const COMMANDS_PER_MESSAGE_MAX = 1.05;
const IDLE_REQUESTS_PER_MINUTE_MAX = 1;
const LATENCY_P50_MAX_MS = 50;
const LATENCY_P99_MAX_MS = 250;
/** throughput may fall short of the capacity model by this much */
const THROUGHPUT_TOLERANCE = 0.2;
const ASYNC_SYNC_RATIO_MAX = 1 / 3;
const BUNDLE_GZIP_MAX_KIB = 1024;
const COLD_START_MAX_MS = 10_000;
/** issue 15: a scheduled message is sent within 2 s of its send_at when the system is idle */
const SCHEDULED_LATENESS_MAX_MS = 2_000;

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const kib = (n: number) => n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Every budgeted figure, with met computed from the numbers; a missing benchmark reads "not run". */
export function figures(r: BenchResults): Figure[] {
  const out: Figure[] = [];
  const missing = (figure: string, budget: string, name: string): Figure => ({
    figure,
    budget,
    measured: r.errors[name] ? `not measured: ${name} failed` : "not run",
    met: null,
    how: "",
  });

  const send = r.sendPath;
  if (send) {
    const t = send.roundTrips;
    out.push({
      figure: "round trips on the async send path",
      budget: "1 Postgres + 1 Redis",
      measured: `${f2(t.postgresSingleQueryConnections / t.sends)} single-query connections + ${f2(t.redisLoneXadd / t.sends)} lone XADDs per send`,
      // One query and one XADD per send: the sends are the only single-query connections and lone XADDs.
      met: t.postgresSingleQueryConnections === t.sends && t.redisLoneXadd === t.sends,
      how: `${t.sends} sends one after another; the worker's ${t.postgresOtherConnections} connections (${t.postgresOtherQueries} queries) and its scripts and pipelines counted apart`,
    });
  } else out.push(missing("round trips on the async send path", "1 Postgres + 1 Redis", "send-path"));

  const w = r.worker;
  if (w && w.commands.length > 0) {
    for (const c of w.commands) {
      out.push({
        figure: `Redis commands per delivered message, steady load, ${c.senders} senders`,
        budget: `≤ ${COMMANDS_PER_MESSAGE_MAX}`,
        measured: `${c.commandsPerMessage.toFixed(3)} at ${c.msgPerS.toFixed(0)} msg/s (HTTP requests ${c.requestsPerMessage.toFixed(3)})`,
        met: c.commandsPerMessage <= COMMANDS_PER_MESSAGE_MAX,
        how: `INFO commandstats before/after ${c.messages} messages, script-inner commands included`,
      });
    }
  } else out.push(missing("Redis commands per delivered message, steady load", `≤ ${COMMANDS_PER_MESSAGE_MAX}`, "worker"));

  if (w?.idle) {
    out.push({
      figure: "Redis requests while idle",
      budget: `≤ ${IDLE_REQUESTS_PER_MINUTE_MAX} request/min`,
      measured: `${f2(w.idle.requestsPerMinute)} requests/min (${f1(w.idle.commandsPerMinute)} commands/min inside)`,
      met: w.idle.requestsPerMinute <= IDLE_REQUESTS_PER_MINUTE_MAX,
      how: `${f1(w.idle.minutes)} min idle with the cron fired every minute`,
    });
  } else out.push(missing("Redis requests while idle", `≤ ${IDLE_REQUESTS_PER_MINUTE_MAX} request/min`, "worker"));

  if (w?.latency) {
    out.push({
      figure: "enqueue → provider call, light load",
      budget: `p50 ≤ ${LATENCY_P50_MAX_MS} ms, p99 ≤ ${LATENCY_P99_MAX_MS} ms`,
      measured: `p50 ${f1(w.latency.p50Ms)} ms, p99 ${f1(w.latency.p99Ms)} ms`,
      met: w.latency.p50Ms <= LATENCY_P50_MAX_MS && w.latency.p99Ms <= LATENCY_P99_MAX_MS,
      how: `${w.latency.messages} messages one every ~100 ms; \`enqueued\` event → claim`,
    });
  } else out.push(missing("enqueue → provider call, light load", `p50 ≤ ${LATENCY_P50_MAX_MS} ms, p99 ≤ ${LATENCY_P99_MAX_MS} ms`, "worker"));

  for (const shards of [1, 4]) {
    const t = w?.throughput.find((x) => x.shards === shards);
    const model = (shards * (w?.concurrency ?? 6)) / 0.1;
    const floor = model * (1 - THROUGHPUT_TOLERANCE);
    const figure = `throughput, ${shards} shard${shards > 1 ? "s" : ""}, simulator 100 ms`;
    const budget = `≥ ${model}/s within ${THROUGHPUT_TOLERANCE * 100} % (≥ ${floor}/s)`;
    if (t) {
      out.push({
        figure,
        budget,
        measured: `${f1(t.msgPerS)} msg/s (${((100 * t.msgPerS) / t.modelPerS).toFixed(0)} %)`,
        met: t.msgPerS >= floor,
        how: `${t.messages} messages preloaded onto the stream, first claim → last outcome`,
      });
    } else out.push(missing(figure, budget, "worker"));
  }

  if (send) {
    const s = send.sequential;
    out.push({
      figure: `async vs sync send latency, simulator ${s.simulatorMs} ms`,
      budget: "async ≤ 1/3 of sync",
      measured: `async p50 ${f1(s.async.p50Ms)} ms (p99 ${f1(s.async.p99Ms)}), sync p50 ${f1(s.sync.p50Ms)} ms (p99 ${f1(s.sync.p99Ms)}): ${f2(s.ratioP50)}`,
      met: s.ratioP50 <= ASYNC_SYNC_RATIO_MAX,
      how: `${s.sends} sends one at a time each; ratio of the p50s`,
    });
  } else out.push(missing("async vs sync send latency", "async ≤ 1/3 of sync", "send-path"));

  if (w?.bullmq) {
    const b = w.bullmq;
    out.push({
      figure: `BullMQ ${b.version}, same Redis, concurrency ${w.concurrency}, 100 ms job`,
      budget: "reported as a ratio",
      measured: `${f1(b.jobsPerS)} jobs/s, ${f1(b.commandsPerJob)} Redis commands per job; QueueWorker 1 shard / BullMQ = ${b.ratioOneShard === undefined ? "n/a" : f2(b.ratioOneShard)}`,
      met: null,
      how: `${b.jobs} jobs, one Node worker, in the same run as the QueueWorker figures`,
    });
  } else out.push(missing("BullMQ, same Redis", "reported as a ratio", "worker"));

  if (r.bundle) {
    out.push({
      figure: "bundle size",
      budget: "gzip < 1 MiB",
      measured: `${kib(r.bundle.rawKiB)} KiB, ${kib(r.bundle.gzipKiB)} KiB gzipped`,
      met: r.bundle.gzipKiB < BUNDLE_GZIP_MAX_KIB,
      how: `\`wrangler deploy --dry-run --outdir\`: ${r.bundle.files.join(", ")}, gzip by node:zlib`,
    });
  } else out.push(missing("bundle size", "gzip < 1 MiB", "bundle"));

  if (r.coldStart && r.coldStart.ms.length > 0) {
    out.push({
      figure: "cold start (local wrangler dev)",
      budget: "< 10 s",
      measured: r.coldStart.ms.map((ms) => `${f2(ms / 1000)} s`).join(", "),
      met: Math.max(...r.coldStart.ms) < COLD_START_MAX_MS,
      how: "spawn of a fresh `wrangler dev` → first 200 from /live",
    });
  } else out.push(missing("cold start (local wrangler dev)", "< 10 s", "cold-start"));

  if (r.scheduled && r.scheduled.sent > 0) {
    const s = r.scheduled;
    out.push({
      figure: "scheduled send lateness (sent_at - send_at), idle",
      budget: "p99 ≤ 2 s",
      measured: `p50 ${f1(s.p50Ms)} ms, p99 ${f1(s.p99Ms)} ms (max ${f1(s.maxMs)} ms; ${s.sent}/${s.messages} sent)`,
      met: s.sent === s.messages && s.p99Ms <= SCHEDULED_LATENESS_MAX_MS,
      how: `${s.messages} sends scheduled ${f1(s.aheadMs / 1000)} s ahead over 1 s, sent by the shards' alarms; both times from Postgres`,
    });
  } else out.push(missing("scheduled send lateness (sent_at - send_at), idle", "p99 ≤ 2 s", "scheduled"));

  const wh = r.webhooks;
  const whBudget = `p50 ≤ ${BUDGET_LIMITS.webhook_delivery_p50_ms} ms, p99 ≤ ${BUDGET_LIMITS.webhook_delivery_p99_ms} ms`;
  if (wh) {
    const p = wh.plain;
    out.push({
      figure: "status webhook: commit → received, signed, 200 answers",
      budget: whBudget,
      measured: `p50 ${f1(p.p50Ms)} ms, p99 ${f1(p.p99Ms)} ms (max ${f1(p.maxMs)} ms; ${p.delivered}/${p.events} delivered, ${p.duplicates} duplicates, ${p.badSignatures} bad signatures)`,
      met: r.budgets?.webhook_delivery_p50_ms?.met === true && r.budgets?.webhook_delivery_p99_ms?.met === true,
      how: `${wh.messages} SMS one every ${wh.intervalMs} ms; webhook_events.created_at → receipt, each verified with the standardwebhooks package`,
    });
    const t = wh.retry;
    out.push({
      figure: "status webhook, receiver answers 500 to the first attempt of every 10th event",
      budget: `each retried event received at most twice, signature valid both times`,
      measured: `${t.deliveredTwiceVerified}/${t.failedFirst} received exactly twice, both verified (most receipts of one event ${t.maxReceipts}); retried p50 ${f1(t.retried.p50Ms)} ms, p99 ${f1(t.retried.p99Ms)} ms (retry after ${t.retryDelayS} s); others p50 ${f1(t.others.p50Ms)} ms, p99 ${f1(t.others.p99Ms)} ms; ${t.delivered}/${t.events} delivered`,
      met: t.failedFirst > 0 && t.deliveredTwiceVerified === t.failedFirst && t.maxReceipts <= 2 && t.badSignatures === 0 && t.delivered === t.events,
      how: `${wh.messages} SMS more on the same stack, a second endpoint`,
    });
  } else out.push(missing("status webhook: commit → received", whBudget, "webhooks"));

  const list = r.list1m;
  const listBudget = `p50 ≤ ${BUDGET_LIMITS.list_1m_p50_ms} ms, p99 ≤ ${BUDGET_LIMITS.list_1m_p99_ms} ms, no Seq Scan on messages`;
  if (list) {
    for (const s of list.shapes) {
      out.push({
        figure: `GET /api/v1/messages at ${(list.rows / 1e6).toLocaleString("en-US")}M rows: ${s.name}`,
        budget: listBudget,
        measured: `p50 ${f1(s.p50Ms)} ms, p99 ${f1(s.p99Ms)} ms (${s.requests} requests); plan ${f1(s.plan.executionMs)} ms, ${s.plan.seqScanOnMessages ? "**Seq Scan on messages**" : "no Seq Scan"}${s.plan.cteMaterialized ? ", CTE materialized" : ""}, ${s.plan.indexes.join(" + ") || "no index"}`,
        met: s.p50Ms <= BUDGET_LIMITS.list_1m_p50_ms! && s.p99Ms <= BUDGET_LIMITS.list_1m_p99_ms! && !s.plan.seqScanOnMessages,
        how: `\`npm run bench:list\` (alone, ${list.measuredAt.slice(0, 10)}): \`?${s.query}\`, total ${s.total}`,
      });
    }
  } else out.push(missing("GET /api/v1/messages at 1M rows", listBudget, "list-1m"));

  return out;
}

const cell = (s: string) => s.replace(/\|/g, "\\|");
const metCell = (f: Figure) => (f.met === null ? "—" : f.met ? "met" : "**not met**");

const BUDGET_UNITS: Record<BudgetKey, string> = {
  send_p50_rtt: "round trips (async send p50 ms / 20 ms, HTTP driver)",
  send_p50_ms_rtt20_ws_vs_http: "WebSocket pool p50 / HTTP driver p50, at 20 ms",
  idle_hour_postgres_queries: "Postgres queries in an idle hour, cron every minute",
  idle_hour_redis_requests: "Redis requests in an idle hour",
  lost_enqueue_recovery_s: "s from a failed XADD on the send path to the stream entry (median)",
  redis_commands_per_message_20: "Redis commands per delivered message, 20 msg/s offered",
  probe_db_queries: "Postgres statements caused by 100 × /health + 100 × /live",
  webhook_delivery_p50_ms: "ms from a status change's commit to its signed webhook at the receiver, p50 (bench/webhooks.ts)",
  webhook_delivery_p99_ms: "the same, p99",
  list_1m_p50_ms: "ms, GET /api/v1/messages at 1,000,000 rows, the slowest filter shape's p50 (bench/list-1m.ts)",
  list_1m_p99_ms: "the same, the slowest shape's p99",
};

/** Issue 14's budget keys as results.json holds them; bench/README.md says how each is measured. */
function budgetsTable(r: BenchResults): string[] {
  const lines = ["## Budgets (`budgets` in results.json)", "", "| key | meaning | value | budget | met |", "| --- | --- | --- | --- | --- |"];
  for (const key of BUDGET_KEYS) {
    const b = r.budgets?.[key];
    const limit = BUDGET_LIMITS[key];
    const budget = limit === null ? "reported" : `≤ ${limit}`;
    if (!b) {
      // issue 15's keys come from their own benchmarks
      const owner = key.startsWith("webhook_") ? "webhooks" : key.startsWith("list_1m_") ? "list-1m" : "budgets";
      lines.push(`| \`${key}\` | ${BUDGET_UNITS[key]} | ${r.errors[owner] ? `not measured: ${owner} failed` : "not run"} | ${budget} | — |`);
      continue;
    }
    const value = Number.isInteger(b.value) ? String(b.value) : Number.isFinite(b.value) ? b.value.toFixed(3) : String(b.value);
    lines.push(`| \`${key}\` | ${BUDGET_UNITS[key]} | ${value} | ${budget} | ${b.met === null ? "—" : b.met ? "met" : "**not met**"} |`);
  }
  const d = r.budgetsDetail;
  if (d) {
    lines.push(
      "",
      `Send at ${d.send.rttMs} ms: HTTP driver p50 ${f1(d.send.http.p50Ms)} ms (p99 ${f1(d.send.http.p99Ms)}), WebSocket pool p50 ${f1(d.send.websocket.p50Ms)} ms (p99 ${f1(d.send.websocket.p99Ms)}), loopback p50 ${f1(d.send.loopback.p50Ms)} ms, so the distance adds ${f2(d.send.networkRtt)} RTT; ${d.send.sends} sends each one after another.` +
        ` Idle hour: compressed ×${d.idle.compression} (${d.idle.cronFirings} crons, safety cadence ${d.idle.safetyIntervalS} s, ${f1(d.idle.wallSeconds)} s of wall clock), ${d.idle.postgresQueries} Postgres queries (${d.idle.postgresStatements} statements with their set_config), ${d.idle.redisRequests} Redis requests.` +
        ` Lost enqueues: ${d.lostEnqueue.recoverySeconds.map((s) => s.toFixed(3)).join(", ")} s.` +
        ` 20 msg/s: ${d.commands20.messages} messages in ${f1(d.commands20.seconds)} s, ${d.commands20.commands} commands (${Object.entries(d.commands20.byCommand).map(([k, v]) => `${k} ${v}`).join(", ")}).`,
    );
  }
  lines.push("");
  return lines;
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.meta;
  const machine = m.machine;
  const lines = [
    "# Benchmark results",
    "",
    "Generated by `npm run bench` (bench/all.ts); regenerated on every run, not edited by hand. Raw",
    "numbers: `bench/results.json`; chart: `bench/results.svg`. What each figure means and how it is",
    "measured: `bench/README.md`.",
    "",
    "| | |",
    "| --- | --- |",
    `| date | ${m.date} |`,
    `| commit | \`${m.commit}\`${m.uncommitted ? " + uncommitted changes" : ""} |`,
    `| profile | ${m.profile === "quick" ? "quick (`QUICK=1`): small counts for development, not figures to quote" : "full"} |`,
    `| counts | ${Object.entries(m.knobs).map(([k, v]) => `${k}=${v}`).join(", ")} |`,
    `| machine | ${machine.cpu}, ${machine.cores} cores, ${f1(machine.memoryGiB)} GiB, ${machine.os} |`,
    `| software | Node ${machine.node}, Redis ${machine.redis ?? "unknown"}, Postgres ${machine.postgres ?? "unknown"} |`,
    `| run time | ${Object.entries(m.seconds).map(([k, s]) => `${k} ${s.toFixed(0)} s`).join(", ")} |`,
    "",
    `Reproduce: \`npm run bench\` (full profile) or \`QUICK=1 npm run bench\` (quick profile); the counts above can be set as environment variables of the same names.`,
    "",
  ];
  if (Object.keys(r.errors).length > 0) {
    lines.push("**Failed:**", "");
    for (const [name, message] of Object.entries(r.errors)) lines.push(`- ${name}: ${cell(message)}`);
    lines.push("");
  }
  lines.push(...budgetsTable(r));
  lines.push("## Figures against their budgets", "", "| figure | budget | measured | met | how |", "| --- | --- | --- | --- | --- |");
  for (const f of figures(r)) lines.push(`| ${cell(f.figure)} | ${cell(f.budget)} | ${cell(f.measured)} | ${metCell(f)} | ${cell(f.how)} |`);
  lines.push("");
  if (r.sendPath) {
    const d = r.meta.knobs.DURATION_S;
    lines.push(
      "## `POST /api/v1/messages/send` under autocannon",
      "",
      `${d} s at each number of connections, a distinct pair of numbers per request. No budget: the local stack's 2 cores are shared by everything.`,
      "",
      "| connections | req/s | p50 ms | p90 ms | p99 ms | non-2xx |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const a of r.sendPath.autocannon) lines.push(`| ${a.connections} | ${a.reqPerS.toFixed(0)} | ${f1(a.p50Ms)} | ${f1(a.p90Ms)} | ${f1(a.p99Ms)} | ${a.non2xx} |`);
    lines.push("");
  }
  if (r.bundle?.wranglerSays) lines.push(`Wrangler's own figure for the same bundle: ${r.bundle.wranglerSays}.`, "");
  return lines.join("\n");
}

/** The chart's vega-lite spec: send latency and req/s against connections, and worker throughput. */
export function chartSpec(r: BenchResults): TopLevelSpec {
  const latency = (r.sendPath?.autocannon ?? []).flatMap((a) => [
    { connections: String(a.connections), percentile: "p50", ms: a.p50Ms },
    { connections: String(a.connections), percentile: "p99", ms: a.p99Ms },
  ]);
  const rate = (r.sendPath?.autocannon ?? []).map((a) => ({ connections: String(a.connections), rps: Math.round(a.reqPerS) }));
  const workers = [
    ...(r.worker?.throughput ?? []).map((t) => ({ what: `${t.shards} shard${t.shards > 1 ? "s" : ""}`, perS: t.msgPerS, model: t.modelPerS })),
    ...(r.worker?.bullmq ? [{ what: "BullMQ", perS: r.worker.bullmq.jobsPerS, model: null }] : []),
  ].map((x) => ({ ...x, label: x.perS.toFixed(1) }));
  const connectionsAxis = { field: "connections", type: "ordinal", sort: ["1", "10", "50"], title: "autocannon connections", axis: { labelAngle: 0 } } as const;
  const panel = { width: 220, height: 200 };
  const m = r.meta;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "messaging-service benchmarks",
      subtitle: `${m.profile} profile · ${m.date.slice(0, 10)} · ${m.commit}${m.uncommitted ? "+" : ""} · ${m.machine.cores} cores`,
      anchor: "start",
    },
    background: "white",
    padding: 12,
    hconcat: [
      {
        ...panel,
        title: { text: "Send latency, POST /messages/send", subtitle: `autocannon, ${m.knobs.DURATION_S} s per point` },
        data: { values: latency },
        layer: [
          { mark: { type: "line", point: true } },
          // p99 labels above their points and p50 labels to their right, so that the two do not overlap at 1 connection.
          { transform: [{ filter: "datum.percentile == 'p99'" }], mark: { type: "text", dy: -9, fontSize: 10 }, encoding: { text: { field: "ms", type: "quantitative", format: ".0f" } } },
          { transform: [{ filter: "datum.percentile == 'p50'" }], mark: { type: "text", align: "left", dx: 7, dy: -2, fontSize: 10 }, encoding: { text: { field: "ms", type: "quantitative", format: ".0f" } } },
        ],
        encoding: {
          x: connectionsAxis,
          y: { field: "ms", type: "quantitative", title: "latency (ms)", scale: { zero: true } },
          color: { field: "percentile", type: "nominal", title: null, scale: { scheme: "tableau10" }, legend: { orient: "top-left" } },
        },
      },
      {
        ...panel,
        title: { text: "Send throughput, POST /messages/send", subtitle: "mean of autocannon's per-second counts" },
        data: { values: rate },
        layer: [
          { mark: { type: "bar", color: "#4c78a8" } },
          { mark: { type: "text", dy: -7, fontSize: 10 }, encoding: { text: { field: "rps", type: "quantitative" } } },
        ],
        encoding: { x: connectionsAxis, y: { field: "rps", type: "quantitative", title: "requests/s" } },
      },
      {
        ...panel,
        title: { text: "Worker throughput, 100 ms provider", subtitle: `concurrency ${r.worker?.concurrency ?? 6}; red tick: capacity model` },
        data: { values: workers },
        layer: [
          { mark: { type: "bar", color: "#59a14f" } },
          { mark: { type: "text", dy: -7, fontSize: 10 }, encoding: { text: { field: "label", type: "nominal" } } },
          // The capacity model (shards × concurrency / latency) as a tick: how far each bar falls short.
          { mark: { type: "tick", color: "#e15759", thickness: 2 }, transform: [{ filter: "datum.model != null" }], encoding: { y: { field: "model", type: "quantitative" } } },
        ],
        encoding: {
          x: { field: "what", type: "nominal", sort: null, title: "QueueWorker shards · BullMQ (1 worker)", axis: { labelAngle: 0 } },
          y: { field: "perS", type: "quantitative", title: "messages/s (BullMQ: jobs/s)" },
        },
      },
    ],
    config: { font: "DejaVu Sans, Helvetica, Arial, sans-serif", title: { fontSize: 13 }, axis: { titleFontSize: 11, labelFontSize: 10 } },
  };
}

export async function renderSvg(r: BenchResults): Promise<string> {
  // renderer "none": no DOM and no canvas module; toSVG builds the markup from the scenegraph.
  const view = new vega.View(vega.parse(compile(chartSpec(r)).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export const RESULTS_JSON = new URL("./results.json", import.meta.url);
export const RESULTS_MD = new URL("./results.md", import.meta.url);
export const RESULTS_SVG = new URL("./results.svg", import.meta.url);

export async function writeReport(r: BenchResults): Promise<void> {
  // figures() goes into the JSON as well, so that a reader of the raw numbers sees the same verdicts.
  await writeFile(RESULTS_JSON, `${JSON.stringify({ ...r, figures: figures(r) }, null, 2)}\n`);
  await writeFile(RESULTS_MD, renderMarkdown(r));
  await writeFile(RESULTS_SVG, await renderSvg(r));
}

if (isMain(import.meta.url)) {
  const r = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as BenchResults;
  await writeReport(r);
  console.log(`rendered ${RESULTS_MD.pathname} and ${RESULTS_SVG.pathname} from ${RESULTS_JSON.pathname}`);
}
