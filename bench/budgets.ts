// The production-shaped budgets (issue 14): what a send costs in round trips at a simulated
// distance, what an idle hour costs Postgres and Redis, how soon a failed XADD reaches its stream,
// Redis commands per message at 20 msg/s offered, and what the probes cost Postgres. Each key is
// written to bench/results.json under `budgets` as { value, budget, met } (bench/README.md says how
// each one is measured).
//   npx tsx bench/budgets.ts      (BUDGET_SENDS, BUDGET_MESSAGES_20, IDLE_HOUR_COMPRESSION, PORT optional)
// bench/all.ts imports runBudgets.
import http from "node:http";
import net from "node:net";
import pg from "pg";
import { isMain, percentile, smsBody, startBenchStack, waitUntilSent, REDIS_URL, type BenchStack } from "./lib.ts";

export interface Budget {
  value: number;
  /** null: reported, no budget */
  budget: number | null;
  met: boolean | null;
}

export const BUDGET_KEYS = [
  "send_p50_rtt",
  "send_p50_ms_rtt20_ws_vs_http",
  "idle_hour_postgres_queries",
  "idle_hour_redis_requests",
  "lost_enqueue_recovery_s",
  "redis_commands_per_message_20",
  "probe_db_queries",
  // issue 15: measured by bench/webhooks.ts and bench/list-1m.ts, which write their own keys
  "webhook_delivery_p50_ms",
  "webhook_delivery_p99_ms",
  "list_1m_p50_ms",
  "list_1m_p99_ms",
] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];
/** The keys runBudgets below measures; the others belong to their own benchmarks. */
export type CoreBudgetKey = Exclude<BudgetKey, "webhook_delivery_p50_ms" | "webhook_delivery_p99_ms" | "list_1m_p50_ms" | "list_1m_p99_ms">;

export interface BudgetsOptions {
  port: number;
  /** sequential sends per transport at 20 ms RTT */
  sends: number;
  /** messages offered at 20 msg/s for the commands-per-message figure */
  messages20: number;
  /**
   * the idle hour is played compressed by this factor: the cron fires 60 times, 60/k s apart, with
   * SWEEP_SAFETY_INTERVAL_SECONDS = 600/k, so that 60 firings stand for the 60 minutes of an hour
   */
  idleCompression: number;
  /** sends whose XADD is made to fail, one after another */
  lostEnqueues: number;
}

export interface BudgetsDetail {
  /** loopback: the same HTTP-driver sends at 0 ms, the local (CPU) part of the latency */
  send: { rttMs: number; sends: number; http: SendLatency; websocket: SendLatency; loopback: SendLatency; networkRtt: number };
  idle: {
    compression: number;
    cronFirings: number;
    safetyIntervalS: number;
    wallSeconds: number;
    postgresQueries: number;
    postgresStatements: number;
    redisRequests: number;
    redisRequestsByCommands: Record<string, number>;
  };
  lostEnqueue: { sends: number; recoverySeconds: number[] };
  commands20: { offeredPerS: number; messages: number; seconds: number; commands: number; byCommand: Record<string, number>; bridgeRequests: number };
  probes: { calls: number; postgresQueries: number; postgresStatements: number; redisRequests: number };
}

export interface BudgetsResult {
  budgets: Record<CoreBudgetKey, Budget>;
  detail: BudgetsDetail;
}

export const BUDGET_LIMITS: Record<BudgetKey, number | null> = {
  send_p50_rtt: 2.5,
  send_p50_ms_rtt20_ws_vs_http: null,
  idle_hour_postgres_queries: 6,
  idle_hour_redis_requests: 60,
  lost_enqueue_recovery_s: 60,
  redis_commands_per_message_20: 1.05,
  probe_db_queries: 0,
  // bench/webhooks.ts, 200 SMS at 20/s on the local stack: p50 25.6–30.4 ms and p99 60.9–104.7 ms
  // over two runs (2026-12-05). About 3–4× headroom: the 2 cores are shared with everything else
  // (workerd, the bridges, Postgres, the load generator and the receiver), where the tail doubles
  // from one run to the next; a p99 past 400 ms would be a real change (a lost doorbell, say, is
  // caught by the sweep a minute later, not within these).
  webhook_delivery_p50_ms: 100,
  webhook_delivery_p99_ms: 400,
  // bench/list-1m.ts, the slowest filter shape at 1,000,000 rows: an interactive list answers a
  // page within 100 ms at p50 and 300 ms at p99, whatever the filter. Set as the target, not from
  // the measurement: on 2026-12-05 the route misses it (p50 up to 1.3 s) because its CTE is
  // materialized and its exact total counts every matching row; bench/README.md has the plans.
  list_1m_p50_ms: 100,
  list_1m_p99_ms: 300,
};

export function budgetsOptionsFromEnv(): BudgetsOptions {
  return {
    port: Number(process.env.PORT ?? 8184),
    sends: Number(process.env.BUDGET_SENDS ?? 100),
    messages20: Number(process.env.BUDGET_MESSAGES_20 ?? 1200),
    idleCompression: Number(process.env.IDLE_HOUR_COMPRESSION ?? 20),
    lostEnqueues: Number(process.env.LOST_ENQUEUES ?? 5),
  };
}

const RTT_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function verdict(key: BudgetKey, value: number): Budget {
  const budget = BUDGET_LIMITS[key];
  return { value, budget, met: budget === null ? null : Number.isFinite(value) && value <= budget };
}

/**
 * Queries Postgres was asked for through the proxy: WebSocket queries, and SQL-over-HTTP requests.
 * An HTTP request is one query in its own transaction, sent as a batch of two statements (the
 * `set_config` of its statement_timeout, then the query; src/db/client.ts): it counts once here,
 * and `postgresStatements` below counts both.
 */
function postgresQueries(stack: BenchStack): number {
  const s = stack.proxy.stats();
  return s.queries + s.httpRequests;
}

function postgresStatements(stack: BenchStack): number {
  const s = stack.proxy.stats();
  return s.queries + s.httpStatements;
}

async function post(stack: BenchStack): Promise<Response> {
  const res = await fetch(`${stack.url}/api/v1/messages/send`, { method: "POST", headers: { "content-type": "application/json" }, body: smsBody() });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`send answered ${res.status}`);
  return res;
}

/**
 * Between the Worker and the Upstash bridge: forwards everything, and while armed answers a lone
 * XADD (the send route's `POST /` request) with a 500, as Upstash does when it cannot serve. The
 * shard's Durable Object writes owed entries as a pipeline (`POST /pipeline`), which passes: the
 * route's Redis fails while the object's works. Records, by message id, when the XADD failed and
 * when the entry was written.
 */
async function startFaultyUpstash() {
  let target = "";
  let armed = false;
  const failedAt = new Map<string, number>();
  const writtenAt = new Map<string, number>();
  const messageIdOf = (command: unknown): string | undefined => {
    if (!Array.isArray(command) || String(command[0]).toUpperCase() !== "XADD") return undefined;
    const i = command.findIndex((a) => a === "data");
    try {
      return JSON.parse(String(command[i + 1])).message_id;
    } catch {
      return undefined;
    }
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const path = new URL(req.url ?? "/", "http://x").pathname.replace(/\/+$/, "");
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString() || "null");
    } catch {
      parsed = null;
    }
    if (armed && path === "") {
      const id = messageIdOf(parsed);
      if (id) {
        failedAt.set(id, performance.now());
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "ERR injected by bench/budgets.ts" }));
        return;
      }
    }
    try {
      const headers: Record<string, string> = {};
      for (const h of ["authorization", "content-type", "upstash-encoding"]) if (req.headers[h]) headers[h] = String(req.headers[h]);
      const upstream = await fetch(`${target}${req.url}`, { method: req.method, headers, body: req.method === "GET" || req.method === "HEAD" ? undefined : body });
      const answer = Buffer.from(await upstream.arrayBuffer());
      if (upstream.ok && path === "/pipeline" && Array.isArray(parsed)) {
        for (const command of parsed) {
          const id = messageIdOf(command);
          if (id && !writtenAt.has(id)) writtenAt.set(id, performance.now());
        }
      }
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" }).end(answer);
    } catch (error) {
      res.writeHead(502).end(JSON.stringify({ error: String(error) }));
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    setTarget: (url: string) => (target = url),
    arm: (on: boolean) => (armed = on),
    failedAt,
    writtenAt,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Commands Redis executes for one logical database, scripts' inner commands included (as INFO
 * commandstats counts them), by MONITOR. INFO commandstats counts every client of the server, and
 * the machine's Redis is shared with other runs; MONITOR says which database each command ran in.
 */
async function monitorDb(db: number) {
  // A raw connection: each MONITOR line is "+<time> [<db> <source>] "<command>" ...". (ioredis's
  // monitor() lost track of its command queue on script-inner lines under load.)
  const url = new URL(REDIS_URL);
  const socket = net.connect(Number(url.port || 6379), url.hostname);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.on("error", () => undefined);
  const byCommand: Record<string, number> = {};
  let counting = false;
  let buffered = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\r\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 2);
      const m = /^\+\d+\.\d+ \[(\d+) [^\]]*\] "([^"]*)"/.exec(line);
      if (!m || !counting || Number(m[1]) !== db) continue;
      const name = m[2]!.toLowerCase();
      byCommand[name] = (byCommand[name] ?? 0) + 1;
    }
  });
  socket.write("MONITOR\r\n");
  return {
    start() {
      for (const k of Object.keys(byCommand)) delete byCommand[k];
      counting = true;
    },
    stop() {
      counting = false;
      return { total: Object.values(byCommand).reduce((a, b) => a + b, 0), byCommand: { ...byCommand } };
    },
    close() {
      socket.destroy();
    },
  };
}

interface SendLatency {
  p50Ms: number;
  p99Ms: number;
  /**
   * per send, while the sends ran (the worker's traffic included): Postgres HTTP requests and
   * WebSocket connections at the Neon proxy, Redis requests and new connections at the bridge
   */
  perSend: { postgresHttpRequests: number; postgresHttpConnections: number; postgresWsConnections: number; redisRequests: number; redisConnections: number };
}

async function sendLatency(port: number, transport: "http" | "websocket", sends: number, rttMs = RTT_MS): Promise<SendLatency> {
  const stack = await startBenchStack(port, { DATABASE_TRANSPORT: transport }, { rttMs });
  try {
    for (let i = 0; i < 10; i++) await post(stack); // isolates, kept-alive connections
    await sleep(500);
    stack.proxy.resetStats();
    stack.bridge.resetStats();
    const ms: number[] = [];
    for (let i = 0; i < sends; i++) {
      const t0 = performance.now();
      await post(stack);
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    const p = stack.proxy.stats();
    const r = stack.bridge.stats();
    const perSend = {
      postgresHttpRequests: p.httpRequests / sends,
      postgresHttpConnections: p.httpConnections / sends,
      postgresWsConnections: p.connections / sends,
      redisRequests: r.requests / sends,
      redisConnections: r.connections / sends,
    };
    return { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99), perSend };
  } finally {
    await stack.close();
  }
}

export async function runBudgets(options: BudgetsOptions): Promise<BudgetsResult> {
  const { port } = options;
  const report = (line: string) => console.log(line);

  // 1. The send at 20 ms, HTTP driver and WebSocket pool, one send after another.
  const httpSend = await sendLatency(port, "http", options.sends);
  const wsSend = await sendLatency(port, "websocket", options.sends);
  const loopback = await sendLatency(port, "http", options.sends, 0);
  // What the distance adds, in round trips: the robust part on a crowded machine.
  const networkRtt = (httpSend.p50Ms - loopback.p50Ms) / RTT_MS;
  report(`async send at ${RTT_MS} ms simulated RTT, ${options.sends} sends one after another:`);
  report(`  HTTP driver     p50 ${httpSend.p50Ms.toFixed(1)} ms (${(httpSend.p50Ms / RTT_MS).toFixed(2)} RTT)  p99 ${httpSend.p99Ms.toFixed(1)} ms  per send ${JSON.stringify(httpSend.perSend)}`);
  report(`  loopback (0 ms) p50 ${loopback.p50Ms.toFixed(1)} ms: the distance adds ${networkRtt.toFixed(2)} RTT to the HTTP driver's p50`);
  report(`  WebSocket pool  p50 ${wsSend.p50Ms.toFixed(1)} ms (${(wsSend.p50Ms / RTT_MS).toFixed(2)} RTT)  p99 ${wsSend.p99Ms.toFixed(1)} ms  per send ${JSON.stringify(wsSend.perSend)}`);

  // 2. One loopback stack for the rest, its Redis behind the fault injector (disarmed but for the
  // lost-enqueue part) and the idle hour's compressed safety cadence.
  const faulty = await startFaultyUpstash();
  const safetyIntervalS = 600 / options.idleCompression;
  const stack = await startBenchStack(port, { UPSTASH_REDIS_REST_URL: faulty.url, SWEEP_SAFETY_INTERVAL_SECONDS: String(safetyIntervalS) }, { rttMs: 0 });
  faulty.setTarget(stack.bridge.url);
  const redisDb = (stack.redis.options.db ?? 0) as number;
  const monitor = await monitorDb(redisDb);
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  let detail: BudgetsDetail;
  try {
    // Probes on a fresh stack: nothing else runs (no sends, no cron), so every statement is theirs.
    await fetch(`${stack.url}/live`).then((r) => r.arrayBuffer());
    await sleep(500);
    stack.proxy.resetStats();
    stack.bridge.resetStats();
    const calls = 100;
    for (let i = 0; i < calls; i++) {
      for (const path of ["/health", "/live"]) {
        const res = await fetch(`${stack.url}${path}`);
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`${path} answered ${res.status}`);
      }
    }
    await sleep(500);
    const probes = { calls: calls * 2, postgresQueries: postgresQueries(stack), postgresStatements: postgresStatements(stack), redisRequests: stack.bridge.stats().requests };
    report(`probes: ${calls} × /health + ${calls} × /live: ${probes.postgresStatements} Postgres statements, ${probes.redisRequests} Redis requests`);

    // Commands per delivered message at 20 msg/s offered: sends paced open-loop, 50 ms apart.
    for (let i = 0; i < 20; i++) await post(stack);
    await waitUntilSent(db, 20, 300_000);
    await sleep(1000);
    monitor.start();
    stack.bridge.resetStats();
    const started = performance.now();
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < options.messages20; i++) {
      await sleep(Math.max(0, started + i * 50 - performance.now()));
      inFlight.push(post(stack));
    }
    await Promise.all(inFlight);
    const seconds = (performance.now() - started) / 1000;
    await waitUntilSent(db, 20 + options.messages20, 300_000);
    await sleep(1500); // the worker's last acknowledgement
    const counted = monitor.stop();
    const commands20 = {
      offeredPerS: 20,
      messages: options.messages20,
      seconds,
      commands: counted.total,
      byCommand: counted.byCommand,
      bridgeRequests: stack.bridge.stats().requests,
    };
    report(`${options.messages20} messages offered at 20/s (${(options.messages20 / seconds).toFixed(1)}/s achieved):`);
    report(`  redis commands per delivered message ${(counted.total / options.messages20).toFixed(3)} (MONITOR on db ${redisDb}, script-inner included): ${JSON.stringify(counted.byCommand)}`);
    report(`  redis requests per delivered message ${(commands20.bridgeRequests / options.messages20).toFixed(3)}`);

    // A failed XADD on the send path: the route hands the id to its shard, whose pipeline writes it.
    const recoverySeconds: number[] = [];
    faulty.arm(true);
    try {
      for (let i = 0; i < options.lostEnqueues; i++) {
        const res = await post(stack);
        void res;
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline) {
          const pending = [...faulty.failedAt.keys()].filter((id) => !faulty.writtenAt.has(id));
          if (pending.length === 0 && faulty.failedAt.size > i) break;
          await sleep(20);
        }
      }
    } finally {
      faulty.arm(false);
    }
    for (const [id, failed] of faulty.failedAt) {
      const written = faulty.writtenAt.get(id);
      recoverySeconds.push(written === undefined ? Infinity : (written - failed) / 1000);
    }
    if (recoverySeconds.length === 0) throw new Error("no XADD was failed: the send path did not XADD through the injector");
    report(`failed XADD → stream entry (${recoverySeconds.length} sends): ${recoverySeconds.map((s) => s.toFixed(3)).join(", ")} s`);
    await waitUntilSent(db, 20 + options.messages20 + options.lostEnqueues, 300_000);

    // The idle hour: one cron after the activity (its database pass is the activity's, not the
    // idle hour's), then 60 firings 60/k s apart with the safety cadence 600/k s.
    await sleep(2000);
    await stack.triggerCron();
    await sleep(1000);
    stack.proxy.resetStats();
    stack.bridge.resetStats();
    const step = 60_000 / options.idleCompression;
    const idleStart = performance.now();
    for (let minute = 0; minute < 60; minute++) {
      await sleep(Math.max(0, idleStart + minute * step - performance.now()));
      await stack.triggerCron();
    }
    await sleep(Math.max(0, idleStart + 60 * step - performance.now()));
    const bridge = stack.bridge.stats();
    const idle = {
      compression: options.idleCompression,
      cronFirings: 60,
      safetyIntervalS,
      wallSeconds: (performance.now() - idleStart) / 1000,
      postgresQueries: postgresQueries(stack),
      postgresStatements: postgresStatements(stack),
      redisRequests: bridge.requests,
      redisRequestsByCommands: bridge.requestsByCommands,
    };
    report(`idle hour compressed ×${options.idleCompression} (60 crons ${step / 1000} s apart, safety interval ${safetyIntervalS} s): ${idle.postgresQueries} Postgres queries (${idle.postgresStatements} statements with their set_config), ${idle.redisRequests} Redis requests ${JSON.stringify(idle.redisRequestsByCommands)}`);

    detail = {
      send: { rttMs: RTT_MS, sends: options.sends, http: httpSend, websocket: wsSend, loopback, networkRtt },
      idle,
      lostEnqueue: { sends: recoverySeconds.length, recoverySeconds },
      commands20,
      probes,
    };
  } finally {
    monitor.close();
    await db.end();
    await stack.close();
    await faulty.close();
  }

  const sortedRecovery = [...detail.lostEnqueue.recoverySeconds].sort((a, b) => a - b);
  const budgets: Record<CoreBudgetKey, Budget> = {
    send_p50_rtt: verdict("send_p50_rtt", httpSend.p50Ms / RTT_MS),
    send_p50_ms_rtt20_ws_vs_http: verdict("send_p50_ms_rtt20_ws_vs_http", wsSend.p50Ms / httpSend.p50Ms),
    idle_hour_postgres_queries: verdict("idle_hour_postgres_queries", detail.idle.postgresQueries),
    idle_hour_redis_requests: verdict("idle_hour_redis_requests", detail.idle.redisRequests),
    // The common case: the median of the sends; the worst is in detail.
    lost_enqueue_recovery_s: verdict("lost_enqueue_recovery_s", percentile(sortedRecovery, 50)),
    redis_commands_per_message_20: verdict("redis_commands_per_message_20", detail.commands20.commands / detail.commands20.messages),
    // Statements, set_config preludes included: every one would wake Neon.
    probe_db_queries: verdict("probe_db_queries", detail.probes.postgresStatements),
  };
  for (const key of Object.keys(budgets) as CoreBudgetKey[]) {
    const b = budgets[key];
    report(`  ${key.padEnd(32)} ${b.value.toFixed(3).padStart(9)}  budget ${b.budget === null ? "reported" : `≤ ${b.budget}`}  ${b.met === null ? "" : b.met ? "met" : "NOT MET"}`);
  }
  return { budgets, detail };
}

if (isMain(import.meta.url)) console.log(JSON.stringify(await runBudgets(budgetsOptionsFromEnv()), null, 2));
