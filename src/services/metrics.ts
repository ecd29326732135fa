// Prometheus metrics (API-CONTRACT §8). Request counters are summed per isolate and flushed to the
// MetricsStore DO at most every few seconds; message counters and queue depth are derived from
// Postgres and Redis state at scrape time. Label values are route templates, enums and status
// codes only: never an id, a phone number or an address.
import { sql } from "drizzle-orm";
import type { Deps } from "../deps";
import { MESSAGE_TYPES } from "../db/schema";
import { streamKey } from "../queue/streams";
import type { Row } from "./representation";

export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FLUSH_INTERVAL_MS = 2000;

const HELP: [name: string, type: string, help: string][] = [
  ["messages_total", "counter", "Messages created and status changes, labelled with the new status"],
  ["http_requests_total", "counter", "HTTP requests by method, route template and status code"],
  ["http_request_duration_seconds", "histogram", "HTTP request duration by method and route template"],
  ["queue_depth", "gauge", "Entries in each message type's stream"],
  ["message_processing_duration_seconds", "histogram", "Provider call duration by message type, provider and outcome"],
  ["webhook_requests_total", "counter", "Webhook deliveries by provider, kind and result"],
];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function series(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `${name}{${parts.join(",")}}` : name;
}

/** Adds one histogram observation as additive bucket, sum and count samples. */
export function observe(into: Map<string, number>, name: string, labels: Record<string, string>, seconds: number) {
  const add = (key: string, value: number) => into.set(key, (into.get(key) ?? 0) + value);
  for (const le of DURATION_BUCKETS) if (seconds <= le) add(series(`${name}_bucket`, { ...labels, le: String(le) }), 1);
  add(series(`${name}_bucket`, { ...labels, le: "+Inf" }), 1);
  add(series(`${name}_sum`, labels), seconds);
  add(series(`${name}_count`, labels), 1);
}

/** The isolate's unflushed samples. */
const pending = new Map<string, number>();
let lastFlush = 0;

export function recordRequest(method: string, route: string, status: number, seconds: number) {
  const key = series("http_requests_total", { method, route, status_code: String(status) });
  pending.set(key, (pending.get(key) ?? 0) + 1);
  observe(pending, "http_request_duration_seconds", { method, route }, seconds);
}

export function recordProcessing(messageType: string, provider: string, outcome: "success" | "error", seconds: number) {
  observe(pending, "message_processing_duration_seconds", { message_type: messageType, provider, outcome }, seconds);
}

export type WebhookResultLabel = "processed" | "duplicate" | "rejected" | "error";

/** One webhook delivery; `provider` and `kind` are fixed enums, never taken from the request. */
export function recordWebhook(provider: string, kind: string, result: WebhookResultLabel) {
  const key = series("webhook_requests_total", { provider, kind, result });
  pending.set(key, (pending.get(key) ?? 0) + 1);
}

function metricsStub(env: Env) {
  return env.METRICS.getByName("global");
}

/** Hands the isolate's samples to the MetricsStore when the interval has passed (or when forced). */
export async function flushSamples(env: Env, force = false): Promise<void> {
  const now = Date.now();
  if (pending.size === 0 || (!force && now - lastFlush < FLUSH_INTERVAL_MS)) return;
  lastFlush = now;
  const samples = [...pending.entries()];
  pending.clear();
  try {
    await metricsStub(env).add(samples);
  } catch (error) {
    // Put them back: they go out with the next flush.
    for (const [key, value] of samples) pending.set(key, (pending.get(key) ?? 0) + value);
    throw error;
  }
}

export async function renderMetrics(env: Env, deps: Deps): Promise<string> {
  await flushSamples(env, true).catch(() => undefined);
  const [stored, messageRows, depths] = await Promise.all([
    metricsStub(env).snapshot(),
    deps.db().run<Row>(sql`
      select m.direction, m.type, m.provider,
             case when e.type = 'created' then case when m.direction = 'inbound' then 'delivered' else 'pending' end
                  else e.data->>'to' end as status,
             count(*)::int as n
        from message_events e join messages m on m.id = e.message_id
       where e.type in ('created', 'status_changed')
       group by 1, 2, 3, 4`),
    Promise.all(MESSAGE_TYPES.map((type) => deps.redis().xlen(streamKey(type)).catch(() => null))),
  ]);

  const lines = new Map<string, string[]>(HELP.map(([name]) => [name, []]));
  const push = (name: string, line: string) => lines.get(name)!.push(line);
  for (const row of messageRows) {
    push("messages_total", `${series("messages_total", { direction: String(row.direction), type: String(row.type), status: String(row.status), provider: String(row.provider) })} ${row.n}`);
  }
  for (const { key, value } of stored) {
    const base = HELP.find(([name]) => key.startsWith(`${name}{`) || key.startsWith(`${name}_`))?.[0];
    if (base) push(base, `${key} ${value}`);
  }
  MESSAGE_TYPES.forEach((type, i) => {
    const depth = depths[i];
    if (depth !== null && depth !== undefined) push("queue_depth", `${series("queue_depth", { queue_name: type })} ${depth}`);
  });

  const out: string[] = [];
  for (const [name, type, help] of HELP) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines.get(name)!);
  }
  return `${out.join("\n")}\n`;
}
