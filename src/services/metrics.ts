// Prometheus metrics in the text exposition format (0.0.4). Every counter and histogram is counted
// where its event happens, into this isolate's buffer; the buffer goes to the MetricsStore Durable
// Object in one RPC at most every FLUSH_INTERVAL_MS (from waitUntil, or at the end of a worker run),
// never one per event, so recording adds no round trip to any request. A scrape reads the store and
// the stream lengths (one Redis pipeline) and never touches Postgres.
// Label values are route templates, enums and provider error codes only: never an id, a phone
// number or an address.
import type { Deps } from "../deps";
import { MESSAGE_TYPES, type MESSAGE_STATUSES } from "../db/schema";
import type { StoredSample } from "../objects/metrics-store";
import { streamKey } from "../queue/keys";
import type { Channel } from "../validation/address";

/** Upper bounds of every histogram's buckets, in seconds; `+Inf` is implied. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
const FLUSH_INTERVAL_MS = 2000;
/**
 * Distinct `code` values of provider_errors_total one isolate sends per provider; later ones become
 * `other`. Providers' codes are a finite set, but a provider could start answering free text.
 */
export const MAX_ERROR_CODES_PER_PROVIDER = 50;
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,40}$/;
const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

interface Family {
  type: "counter" | "gauge" | "histogram";
  help: string;
  /** label names in the order they are written */
  labels: readonly string[];
}

/** Every family, in the order of the exposition. */
const FAMILIES = {
  messages_total: {
    type: "counter",
    help: "Messages created (outbound pending, inbound delivered) and status changes, labelled with the new status",
    labels: ["direction", "type", "status", "provider"],
  },
  provider_errors_total: {
    type: "counter",
    help: "Failed provider calls by provider and the provider's error code",
    labels: ["provider", "code"],
  },
  rate_limit_hits_total: {
    type: "counter",
    help: "Requests refused with 429 by the rate limiter, by route template",
    labels: ["route"],
  },
  http_requests_total: {
    type: "counter",
    help: "HTTP requests by method, route template and status code",
    labels: ["method", "route", "status_code"],
  },
  http_request_duration_seconds: {
    type: "histogram",
    help: "HTTP request duration by method and route template",
    labels: ["method", "route"],
  },
  message_processing_duration_seconds: {
    type: "histogram",
    help: "Provider call duration by message type, provider and outcome",
    labels: ["message_type", "provider", "outcome"],
  },
  webhook_requests_total: {
    type: "counter",
    help: "Webhook deliveries by provider, kind and result",
    labels: ["provider", "kind", "result"],
  },
  queue_depth: {
    type: "gauge",
    help: "Entries in each message type's stream",
    labels: ["queue_name"],
  },
} as const satisfies Record<string, Family>;

type FamilyName = keyof typeof FAMILIES;
type LabelsOf<F extends FamilyName> = Record<(typeof FAMILIES)[F]["labels"][number], string>;

const escapeLabelValue = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/**
 * `name="value",…` in the family's label order: the identity of a series within its family.
 * Values often come from untyped database rows; a missing one must not make counting throw.
 */
function labelText<F extends FamilyName>(family: F, labels: LabelsOf<F>): string {
  const names: readonly string[] = FAMILIES[family].labels;
  return names.map((name) => `${name}="${escapeLabelValue(String((labels as Record<string, unknown>)[name] ?? ""))}"`).join(",");
}

/** What this isolate counted since its last flush, one entry per stored field. */
const pending = new Map<string, StoredSample>();
let lastFlush = 0;

function add(family: FamilyName, labels: string, field: string, value: number) {
  const key = `${family} ${labels} ${field}`; // neither a family nor a field contains a space
  const sample = pending.get(key);
  if (sample) sample.value += value;
  else pending.set(key, { family, labels, field, value });
}

function count<F extends FamilyName>(family: F, labels: LabelsOf<F>) {
  add(family, labelText(family, labels), "value", 1);
}

/**
 * One observation: its own bucket only (the first bound it fits under, none beyond the last), the
 * sum and the count. Buckets are made cumulative when rendered, where `+Inf` is the count.
 */
function observe<F extends FamilyName>(family: F, labels: LabelsOf<F>, seconds: number) {
  const text = labelText(family, labels);
  const bound = DURATION_BUCKETS.find((le) => seconds <= le);
  if (bound !== undefined) add(family, text, `le=${bound}`, 1);
  add(family, text, "sum", seconds);
  add(family, text, "count", 1);
}

export function recordRequest(method: string, route: string, status: number, seconds: number) {
  const methodLabel = HTTP_METHODS.has(method) ? method : "other";
  count("http_requests_total", { method: methodLabel, route, status_code: String(status) });
  observe("http_request_duration_seconds", { method: methodLabel, route }, seconds);
}

export function recordProcessing(messageType: string, provider: string, outcome: "success" | "error", seconds: number) {
  observe("message_processing_duration_seconds", { message_type: messageType, provider, outcome }, seconds);
}

export type WebhookResultLabel = "processed" | "duplicate" | "rejected" | "error";

/** One webhook delivery; `provider` and `kind` are fixed enums, never taken from the request. */
export function recordWebhook(provider: string, kind: string, result: WebhookResultLabel) {
  count("webhook_requests_total", { provider, kind, result });
}

export interface MessageLabels {
  direction: "inbound" | "outbound";
  type: Channel;
  provider: string;
  /** the status the message has now: `pending` (outbound) or `delivered` (inbound) when created */
  status: (typeof MESSAGE_STATUSES)[number];
}

/** A message created, or a message whose status changed: call it once the change is committed. */
export function recordMessage(message: MessageLabels) {
  count("messages_total", { direction: message.direction, type: message.type, status: message.status, provider: message.provider });
}

const errorCodesSeen = new Map<string, Set<string>>();

/** One failed provider call, by the provider's own error code (Twilio's number, `timeout`, …). */
export function recordProviderError(provider: string, code: string) {
  let seen = errorCodesSeen.get(provider);
  if (!seen) errorCodesSeen.set(provider, (seen = new Set()));
  let label = ERROR_CODE.test(code) ? code : "other";
  if (!seen.has(label)) {
    if (seen.size < MAX_ERROR_CODES_PER_PROVIDER) seen.add(label);
    else label = "other";
  }
  count("provider_errors_total", { provider, code: label });
}

/** A request the rate limiter refused; `route` is the route template. */
export function recordRateLimitHit(route: string) {
  count("rate_limit_hits_total", { route });
}

function metricsStub(env: Env) {
  return env.METRICS.getByName("global");
}

/** Hands the isolate's samples to the MetricsStore when the interval has passed (or when forced). */
export async function flushSamples(env: Env, force = false): Promise<void> {
  const now = Date.now();
  if (pending.size === 0 || (!force && now - lastFlush < FLUSH_INTERVAL_MS)) return;
  lastFlush = now;
  const samples = [...pending.values()];
  pending.clear();
  try {
    await metricsStub(env).merge(samples);
  } catch (error) {
    // Put them back: they go out with the next flush.
    for (const { family, labels, field, value } of samples) add(family as FamilyName, labels, field, value);
    throw error;
  }
}

/** XLEN of every stream in one Redis request; null when Redis does not answer. */
async function queueDepths(deps: Deps): Promise<number[] | null> {
  const pipeline = deps.redis().pipeline();
  for (const type of MESSAGE_TYPES) pipeline.xlen(streamKey(type));
  try {
    return (await pipeline.exec()).map(Number);
  } catch {
    return null;
  }
}

const sampleLine = (name: string, labels: string, value: number) => `${name}${labels ? `{${labels}}` : ""} ${value}`;
const withLe = (labels: string, le: string) => (labels ? `${labels},le="${le}"` : `le="${le}"`);

function histogramLines(name: string, labels: string, fields: Map<string, number>): string[] {
  // A stored bucket whose bound is no longer configured is counted under the next larger bound.
  const stored = [...fields].filter(([field]) => field.startsWith("le=")).map(([field, n]) => [Number(field.slice(3)), n] as const);
  const lines = DURATION_BUCKETS.map((le) => {
    const cumulative = stored.reduce((sum, [bound, n]) => (bound <= le ? sum + n : sum), 0);
    return sampleLine(`${name}_bucket`, withLe(labels, String(le)), cumulative);
  });
  const total = fields.get("count") ?? 0;
  lines.push(sampleLine(`${name}_bucket`, withLe(labels, "+Inf"), total));
  lines.push(sampleLine(`${name}_sum`, labels, fields.get("sum") ?? 0));
  lines.push(sampleLine(`${name}_count`, labels, total));
  return lines;
}

/** The exposition: per family one HELP and one TYPE, then its series, each series' lines together. */
export function formatExposition(stored: StoredSample[], depths: number[] | null): string {
  const byFamily = new Map<string, Map<string, Map<string, number>>>();
  for (const { family, labels, field, value } of stored) {
    let series = byFamily.get(family);
    if (!series) byFamily.set(family, (series = new Map()));
    let fields = series.get(labels);
    if (!fields) series.set(labels, (fields = new Map()));
    fields.set(field, (fields.get(field) ?? 0) + value);
  }
  if (depths) {
    const series = new Map(MESSAGE_TYPES.map((type, i) => [labelText("queue_depth", { queue_name: type }), new Map([["value", depths[i] ?? 0]])]));
    byFamily.set("queue_depth", series);
  }

  const out: string[] = [];
  for (const [name, family] of Object.entries(FAMILIES) as [FamilyName, Family][]) {
    out.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
    const series = [...(byFamily.get(name) ?? new Map<string, Map<string, number>>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [labels, fields] of series) {
      if (family.type === "histogram") out.push(...histogramLines(name, labels, fields));
      else out.push(sampleLine(name, labels, fields.get("value") ?? 0));
    }
  }
  return `${out.join("\n")}\n`;
}

export async function renderMetrics(env: Env, deps: Deps): Promise<string> {
  await flushSamples(env, true).catch(() => undefined);
  const [stored, depths] = await Promise.all([metricsStub(env).snapshot(), queueDepths(deps)]);
  return formatExposition(stored, depths);
}
