// GET /api/v1/messages at a million rows (issue 15): the list route's latency for each filter shape
// on a table the size of a busy account's, and each shape's plan (EXPLAIN (ANALYZE, BUFFERS)), to
// see that an index serves it rather than a scan of the table.
//
// Its own database (msg_bench_list_<pid>, dropped at the end): migrated, then LIST_ROWS messages
// (default 1,000,000) bulk-inserted with `insert … select … generate_series` in created_at order
// (as a live table fills), spread over 90 days, across 50,000 recipients (one direct conversation
// each) with a skewed share: recipient r = floor(50000 · u³), u uniform, so the busiest has tens of
// thousands of messages, a few dozen have thousands and the median a handful; 20 sender numbers;
// one in five messages inbound; outbound 85 % delivered, 8 % sent, 3 % failed, 2 % undelivered,
// 2 % canceled (no in-flight status, so that the worker has nothing to do). Then VACUUM ANALYZE
// (a table in steady state has been autovacuumed), and the service is started on that database.
//
// Each shape: LIST_WARMUP requests, then LIST_REQUESTS (default 50) one after another, or as many as
// fit in LIST_SHAPE_SECONDS (default 30), timed at the client. The SQL of each shape is the
// service's own: listMessages (src/services/messages.ts) run with a database stub that renders its
// drizzle SQL, then EXPLAINed on the same database.
//   npm run bench:list            (PORT, LIST_ROWS, LIST_REQUESTS, LIST_SHAPE_SECONDS optional;
//                                  LIST_KEEP_DB=1 leaves the database for a look, drop it afterwards)
// Not part of `npm run bench` (it takes several minutes: the load alone is most of it). Run alone, it
// writes its section and its budget keys into the existing bench/results.json (and the report);
// bench/all.ts carries the last run's section over.
import { readFile } from "node:fs/promises";
import { PgDialect } from "drizzle-orm/pg-core";
import type { SQL } from "drizzle-orm";
import pg from "pg";
import { applyMigrations, dropDatabase, ensureDatabase } from "../dev/db.ts";
import { verdict, type Budget } from "./budgets.ts";
import { isMain, percentile, POSTGRES_URL, REQUEST_TIMEOUT_MS, startBenchStack } from "./lib.ts";
import { RESULTS_JSON, writeReport, type BenchResults } from "./report.ts";

export interface ListOptions {
  port: number;
  rows: number;
  requests: number;
  warmup: number;
  shapeSeconds: number;
  keepDb: boolean;
}

export interface PlanSummary {
  executionMs: number;
  planningMs: number;
  /** "Index Scan using messages_to_idx on messages", … in plan order */
  nodes: string[];
  indexes: string[];
  seqScanOnMessages: boolean;
  /** the CTE `filtered` was materialized (a CTE Scan reads it) */
  cteMaterialized: boolean;
  sharedHit: number;
  sharedRead: number;
  tempWritten: number;
  /** rows the page's sort or scan went through, per the plan's top sort/limit */
  rowsFiltered: number;
}

export interface ShapeResult {
  name: string;
  query: string;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** total as the route answered it */
  total: number;
  returned: number;
  plan: PlanSummary;
  /**
   * For comparison, not what the service runs: the same SQL with the CTE declared NOT MATERIALIZED
   * (Postgres materializes a CTE referenced twice, so the page cannot stop early on an index)
   */
  planNotMaterialized: PlanSummary | null;
}

export interface ListResult {
  rows: number;
  recipients: number;
  loadSeconds: number;
  tableMiB: number;
  indexesMiB: number;
  shapes: ShapeResult[];
  measuredAt: string;
}

export function listOptionsFromEnv(): ListOptions {
  return {
    port: Number(process.env.PORT ?? 8186),
    rows: Number(process.env.LIST_ROWS ?? 1_000_000),
    requests: Number(process.env.LIST_REQUESTS ?? 50),
    warmup: Number(process.env.LIST_WARMUP ?? 3),
    shapeSeconds: Number(process.env.LIST_SHAPE_SECONDS ?? 30),
    keepDb: !!process.env.LIST_KEEP_DB && process.env.LIST_KEEP_DB !== "0",
  };
}

const RECIPIENTS = 50_000;
const SENDERS = 20;
const DAYS = 90;
const CHUNKS = 10;

/** Fills the database: conversations, then the messages chunk by chunk, oldest chunk first. */
async function load(db: pg.Client, rows: number): Promise<number> {
  const t0 = performance.now();
  // Deterministic conversation ids (md5 of the recipient number) so that messages can name theirs
  // without a join; the bench's data, not the service's id scheme.
  await db.query(
    `insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, status, created_at, updated_at)
     select md5('conv' || r)::uuid, '+1202555' || lpad((r % ${SENDERS})::text, 4, '0'), '+1303' || lpad(r::text, 7, '0'), 'sms', 'direct',
            'bench:' || r, 'active', now() - interval '${DAYS + 1} days', now()
       from generate_series(0, ${RECIPIENTS - 1}) r`,
  );
  const perChunk = Math.ceil(rows / CHUNKS);
  const span = DAYS / CHUNKS;
  for (let k = 0; k < CHUNKS; k++) {
    const first = k * perChunk + 1;
    const last = Math.min(rows, (k + 1) * perChunk);
    if (first > last) break;
    const tc = performance.now();
    // The chunk's rows sorted by created_at: the heap in time order, as a live table is.
    await db.query(
      `insert into messages (id, conversation_id, provider, provider_message_id, direction, status, type, from_address, to_address,
                             body, segments, attempts, error_code, error_message, sent_at, delivered_at, created_at, updated_at)
       select gen_random_uuid(), md5('conv' || r)::uuid, 'twilio', case when inbound then 'SMin' else 'SM' end || md5(g::text),
              case when inbound then 'inbound' else 'outbound' end, status, 'sms',
              case when inbound then recipient else sender end, case when inbound then sender else recipient end,
              'bench message ' || g, 1, case when inbound then 0 else 1 end,
              case when status in ('failed', 'undelivered') then '30007' end,
              case when status in ('failed', 'undelivered') then 'Carrier violation' end,
              case when not inbound and status in ('sent', 'delivered', 'undelivered') then created + interval '1 second' end,
              case when status = 'delivered' then created + interval '3 seconds' end,
              created, created + interval '3 seconds'
         from (select g, r, recipient, sender, inbound, created,
                      case when inbound or s < 0.85 then 'delivered' when s < 0.93 then 'sent' when s < 0.96 then 'failed'
                           when s < 0.98 then 'undelivered' else 'canceled' end as status
                 from (select g, r, '+1303' || lpad(r::text, 7, '0') as recipient, '+1202555' || lpad((r % ${SENDERS})::text, 4, '0') as sender,
                              random() < 0.2 as inbound, random() as s,
                              now() - interval '${DAYS} days' + (${k} + random()) * interval '${span} days' as created
                         from (select g, floor(${RECIPIENTS} * power(random(), 3))::int as r from generate_series(${first}, ${last}) g) a) b
                order by created) c`,
    );
    console.log(`  messages ${first.toLocaleString("en-US")}–${last.toLocaleString("en-US")} inserted in ${((performance.now() - tc) / 1000).toFixed(1)} s`);
  }
  await db.query(
    `update conversations c set message_count = s.n, last_message_at = s.last
       from (select conversation_id, count(*)::int as n, max(created_at) as last from messages group by 1) s
      where c.id = s.conversation_id`,
  );
  await db.query("vacuum (analyze) messages");
  await db.query("vacuum (analyze) conversations");
  return (performance.now() - t0) / 1000;
}

/** MessageFilters of src/services/messages.ts, the part this benchmark uses. */
interface MessageFilters {
  status?: string;
  createdAfter?: number;
  createdBefore?: number;
  to?: string;
  from?: string;
}

type ListMessages = (deps: unknown, filters: MessageFilters, page: { limit: number; offset: number }) => Promise<unknown>;

/** The SQL listMessages sends for these filters, rendered as drizzle renders it for the driver. */
async function serviceSql(filters: MessageFilters, page: { limit: number; offset: number }): Promise<{ sql: string; params: unknown[] }> {
  // Imported by URL, so that the Node type check does not take in the Worker's sources (their
  // types need the Workers runtime's); tsx loads it like any module.
  const { listMessages } = (await import(new URL("../src/services/messages.ts", import.meta.url).href)) as { listMessages: ListMessages };
  const dialect = new PgDialect();
  let captured: { sql: string; params: unknown[] } | null = null;
  const deps = { db: () => ({ run: async (q: SQL) => ((captured = dialect.sqlToQuery(q)), []) }) };
  await listMessages(deps, filters, page);
  if (!captured) throw new Error("listMessages issued no query");
  return captured;
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "CTE Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Shared Hit Blocks"?: number;
  "Shared Read Blocks"?: number;
  "Temp Written Blocks"?: number;
  Plans?: PlanNode[];
}

async function explain(db: pg.Client, query: { sql: string; params: unknown[] }): Promise<PlanSummary> {
  const { rows } = await db.query(`explain (analyze, buffers, format json) ${query.sql}`, query.params);
  const top = rows[0]["QUERY PLAN"][0] as { Plan: PlanNode; "Execution Time": number; "Planning Time": number };
  const nodes: string[] = [];
  const indexes = new Set<string>();
  let seq = false;
  let cte = false;
  let scanned = 0;
  const walk = (n: PlanNode) => {
    const on = n["Relation Name"] ? ` on ${n["Relation Name"]}` : "";
    const using = n["Index Name"] ? ` using ${n["Index Name"]}` : "";
    const cteName = n["CTE Name"] ? ` ${n["CTE Name"]}` : "";
    nodes.push(`${n["Node Type"]}${using}${on}${cteName} (${n["Actual Rows"] ?? "?"} rows × ${n["Actual Loops"] ?? 1})`);
    if (n["Index Name"]) indexes.add(n["Index Name"]);
    if (n["Relation Name"] === "messages" && /Seq Scan/.test(n["Node Type"])) seq = true;
    if (n["Node Type"] === "CTE Scan") cte = true;
    if (n["Relation Name"] === "messages") scanned = Math.max(scanned, (n["Actual Rows"] ?? 0) * (n["Actual Loops"] ?? 1));
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(top.Plan);
  return {
    executionMs: top["Execution Time"],
    planningMs: top["Planning Time"],
    nodes,
    indexes: [...indexes],
    seqScanOnMessages: seq,
    cteMaterialized: cte,
    sharedHit: top.Plan["Shared Hit Blocks"] ?? 0,
    sharedRead: top.Plan["Shared Read Blocks"] ?? 0,
    tempWritten: top.Plan["Temp Written Blocks"] ?? 0,
    rowsFiltered: scanned,
  };
}

interface Shape {
  name: string;
  filters: MessageFilters;
  offset: number;
}

function queryString(s: Shape): string {
  const q = new URLSearchParams();
  const f = s.filters;
  if (f.to) q.set("to", f.to);
  if (f.from) q.set("from", f.from);
  if (f.status) q.set("status", f.status);
  if (f.createdAfter !== undefined) q.set("created_after", new Date(f.createdAfter).toISOString().replace(/\.\d{3}Z$/, "Z"));
  if (f.createdBefore !== undefined) q.set("created_before", new Date(f.createdBefore).toISOString().replace(/\.\d{3}Z$/, "Z"));
  q.set("limit", "50");
  if (s.offset) q.set("offset", String(s.offset));
  return q.toString();
}

export async function runList(opts: ListOptions): Promise<ListResult> {
  const name = `msg_bench_list_${process.pid}`;
  const databaseUrl = Object.assign(new URL(POSTGRES_URL), { pathname: `/${name}` }).toString();
  await ensureDatabase(databaseUrl);
  let stack: Awaited<ReturnType<typeof startBenchStack>> | undefined;
  const db = new pg.Client({ connectionString: databaseUrl });
  try {
    await applyMigrations(databaseUrl);
    await db.connect();
    console.log(`loading ${opts.rows.toLocaleString("en-US")} messages into ${name}`);
    const loadSeconds = await load(db, opts.rows);
    const sizes = (
      await db.query<{ table: string; indexes: string }>(
        `select pg_table_size('messages')::text as table, pg_indexes_size('messages')::text as indexes`,
      )
    ).rows[0]!;
    const recipients = (await db.query<{ n: number }>(`select count(distinct to_address)::int as n from messages where direction = 'outbound'`)).rows[0]!.n;
    const heavy = (await db.query<{ to_address: string; n: number }>(
      `select to_address, count(*)::int as n from messages where direction = 'outbound' group by 1 order by 2 desc limit 1`,
    )).rows[0]!;
    const median = (await db.query<{ to_address: string; n: number }>(
      `select to_address, n from (select to_address, count(*)::int as n from messages where direction = 'outbound' group by 1) c
        order by n limit 1 offset (select count(distinct to_address) / 2 from messages where direction = 'outbound')`,
    )).rows[0]!;
    console.log(
      `loaded in ${loadSeconds.toFixed(0)} s: table ${(Number(sizes.table) / 2 ** 20).toFixed(0)} MiB, indexes ${(Number(sizes.indexes) / 2 ** 20).toFixed(0)} MiB; ` +
        `${recipients} recipients; busiest ${heavy.to_address} (${heavy.n} messages), median ${median.to_address} (${median.n})`,
    );

    const day = 86_400_000;
    const dayStart = Math.floor((Date.now() - 30 * day) / day) * day;
    const shapes: Shape[] = [
      { name: "first page, no filter", filters: {}, offset: 0 },
      { name: "to = busiest recipient", filters: { to: heavy.to_address }, offset: 0 },
      { name: "to = median recipient", filters: { to: median.to_address }, offset: 0 },
      { name: "from = a sender number", filters: { from: "+12025550000" }, offset: 0 },
      { name: "one-day window (created_after/created_before)", filters: { createdAfter: dayStart, createdBefore: dayStart + day }, offset: 0 },
      { name: "status = failed", filters: { status: "failed" }, offset: 0 },
      { name: "status = sent", filters: { status: "sent" }, offset: 0 },
      { name: "status = delivered", filters: { status: "delivered" }, offset: 0 },
      { name: "page 11, no filter (offset 500)", filters: {}, offset: 500 },
      { name: "page 101, no filter (offset 5000)", filters: {}, offset: 5000 },
      { name: "page 11, to = busiest recipient (offset 500)", filters: { to: heavy.to_address }, offset: 500 },
    ];

    stack = await startBenchStack(opts.port, {}, { databaseName: name, keepDatabase: true });
    const results: ShapeResult[] = [];
    for (const shape of shapes) {
      const query = queryString(shape);
      const url = `${stack.url}/api/v1/messages?${query}`;
      let total = 0;
      let returned = 0;
      const get = async () => {
        const t0 = performance.now();
        const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        const body = (await res.json()) as { total: number; messages: unknown[] };
        const ms = performance.now() - t0;
        if (res.status !== 200) throw new Error(`${shape.name}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
        total = body.total;
        returned = body.messages.length;
        return ms;
      };
      for (let i = 0; i < opts.warmup; i++) await get();
      const ms: number[] = [];
      const until = performance.now() + opts.shapeSeconds * 1000;
      while (ms.length < opts.requests && (ms.length === 0 || performance.now() < until)) ms.push(await get());
      ms.sort((a, b) => a - b);
      const sent = await serviceSql(shape.filters, { limit: 50, offset: shape.offset });
      if (results.length === 0) console.log(`the service's SQL (listMessages), no filter:${sent.sql}`);
      const plan = await explain(db, sent);
      const inlined = sent.sql.replace("with filtered as (", "with filtered as not materialized (");
      const planNotMaterialized = inlined === sent.sql ? null : await explain(db, { sql: inlined, params: sent.params });
      const r: ShapeResult = {
        name: shape.name,
        query,
        requests: ms.length,
        p50Ms: percentile(ms, 50),
        p99Ms: percentile(ms, 99),
        maxMs: ms.at(-1)!,
        total,
        returned,
        plan,
        planNotMaterialized,
      };
      results.push(r);
      console.log(
        `${shape.name.padEnd(46)} p50 ${r.p50Ms.toFixed(1).padStart(7)} ms  p99 ${r.p99Ms.toFixed(1).padStart(7)} ms  (${r.requests} requests; total ${total}, ${returned} returned)`,
      );
      console.log(
        `    plan: ${plan.executionMs.toFixed(1)} ms execution, ${plan.sharedHit} hit + ${plan.sharedRead} read buffers, ${plan.tempWritten} temp written; ` +
          `${plan.seqScanOnMessages ? "SEQ SCAN on messages" : "no Seq Scan on messages"}${plan.cteMaterialized ? ", CTE materialized" : ""}; indexes: ${plan.indexes.join(", ") || "none"}`,
      );
      for (const n of plan.nodes) console.log(`      ${n}`);
      if (planNotMaterialized) {
        const p = planNotMaterialized;
        console.log(
          `    the same SQL with the CTE NOT MATERIALIZED (comparison only): ${p.executionMs.toFixed(1)} ms execution, ${p.sharedHit} hit + ${p.sharedRead} read buffers; ` +
            `${p.seqScanOnMessages ? "SEQ SCAN on messages" : "no Seq Scan on messages"}; indexes: ${p.indexes.join(", ") || "none"}`,
        );
        for (const n of p.nodes) console.log(`      ${n}`);
      }
    }
    return {
      rows: opts.rows,
      recipients,
      loadSeconds,
      tableMiB: Number(sizes.table) / 2 ** 20,
      indexesMiB: Number(sizes.indexes) / 2 ** 20,
      shapes: results,
      measuredAt: new Date().toISOString(),
    };
  } finally {
    await db.end().catch(() => undefined);
    await stack?.close();
    if (opts.keepDb) console.log(`kept ${name}: drop it with  psql -h 127.0.0.1 postgres -c 'drop database ${name}'`);
    else await dropDatabase(databaseUrl);
  }
}

type ListBudgetKey = "list_1m_p50_ms" | "list_1m_p99_ms";
/** The budget keys this benchmark owns: the slowest shape's p50 and p99, and no shape may scan the table. */
export function listBudgets(r: ListResult): Record<ListBudgetKey, Budget> {
  const worstP50 = Math.max(...r.shapes.map((s) => s.p50Ms));
  const worstP99 = Math.max(...r.shapes.map((s) => s.p99Ms));
  return { list_1m_p50_ms: verdict("list_1m_p50_ms", worstP50), list_1m_p99_ms: verdict("list_1m_p99_ms", worstP99) };
}

if (isMain(import.meta.url)) {
  const result = await runList(listOptionsFromEnv());
  const budgets = listBudgets(result);
  for (const [key, b] of Object.entries(budgets)) console.log(`  ${key.padEnd(32)} ${b.value.toFixed(1).padStart(9)}  budget ≤ ${b.budget}  ${b.met ? "met" : "NOT MET"}`);
  const seq = result.shapes.filter((s) => s.plan.seqScanOnMessages).map((s) => s.name);
  console.log(seq.length ? `Seq Scan on messages in: ${seq.join("; ")}` : "no shape scans messages sequentially");
  const previous = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as BenchResults & { figures?: unknown };
  delete previous.figures;
  await writeReport({ ...previous, list1m: result, budgets: { ...previous.budgets, ...budgets } });
  console.log(`wrote the list1m section and its budgets into ${RESULTS_JSON.pathname}`);
  process.exit(0);
}
