// Proves that /metrics is well-formed Prometheus text exposition (one HELP and TYPE per family,
// series grouped, complete ordered cumulative buckets, escaped labels), that the counters recorded
// where events happen reach it, and that a scrape needs no Postgres.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  DURATION_BUCKETS,
  MAX_ERROR_CODES_PER_PROVIDER,
  flushSamples,
  recordMessage,
  recordProcessing,
  recordProviderError,
  recordRateLimitHit,
  recordWebhook,
} from "../src/services/metrics";
import { call } from "./helpers/http";

const FAMILIES: Record<string, string> = {
  messages_total: "counter",
  provider_errors_total: "counter",
  rate_limit_hits_total: "counter",
  http_requests_total: "counter",
  http_request_duration_seconds: "histogram",
  message_processing_duration_seconds: "histogram",
  webhook_requests_total: "counter",
  queue_depth: "gauge",
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`not a sample value: ${text}`);
  return Number(text);
}

/** `{a="x",b="y"}` at the start of `rest`: the labels and what follows the closing brace. */
function parseLabels(rest: string): { labels: Record<string, string>; after: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  while (rest[i] !== "}") {
    const eq = rest.indexOf("=", i);
    const name = rest.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name: ${name}`);
    if (name in labels) throw new Error(`label ${name} twice`);
    if (rest[eq + 1] !== '"') throw new Error(`label ${name}: value not quoted`);
    let value = "";
    let j = eq + 2;
    for (;;) {
      const ch = rest[j];
      if (ch === undefined) throw new Error("unterminated label value");
      if (ch === '"') break;
      if (ch === "\n") throw new Error("raw newline in a label value");
      if (ch === "\\") {
        const escaped = rest[j + 1];
        if (escaped === "n") value += "\n";
        else if (escaped === "\\" || escaped === '"') value += escaped;
        else throw new Error(`bad escape \\${escaped}`);
        j += 2;
      } else {
        value += ch;
        j += 1;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (rest[i] === ",") i += 1;
    else if (rest[i] !== "}") throw new Error(`expected , or } after label ${name}`);
  }
  return { labels, after: rest.slice(i + 1) };
}

const seriesKey = (name: string, labels: Record<string, string>) =>
  `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;

/**
 * A strict reading of the text format: every sample under the HELP and TYPE of its own family,
 * which come once and first; a family's samples together; no series twice.
 */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name: ${name}`);
      if (kind === "HELP") {
        if (families.has(name)) throw new Error(`second HELP for ${name}`);
        current = { name, help: rest, type: "", samples: [] };
        families.set(name, current);
      } else {
        if (current?.name !== name || current.type || current.samples.length) throw new Error(`TYPE for ${name} not right after its HELP`);
        if (!["counter", "gauge", "histogram"].includes(rest)) throw new Error(`unknown type ${rest}`);
        current.type = rest;
      }
      continue;
    }
    if (line.startsWith("#") || line === "") throw new Error(`unexpected line: ${JSON.stringify(line)}`);
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!name) throw new Error(`bad sample line: ${line}`);
    const { labels, after } = line[name.length] === "{" ? parseLabels(line.slice(name.length)) : { labels: {}, after: line.slice(name.length) };
    if (!after.startsWith(" ")) throw new Error(`no value: ${line}`);
    const value = parseValue(after.slice(1));
    if (!current?.type) throw new Error(`sample before any HELP/TYPE: ${line}`);
    const allowed = current.type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => current!.name + s) : [current.name];
    if (!allowed.includes(name)) throw new Error(`${name} outside its family (under ${current.name})`);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`series twice: ${line}`);
    seen.add(key);
    current.samples.push({ name, labels, value });
  }
  return families;
}

/**
 * Each histogram series' lines together: every bucket in increasing `le` with `+Inf` last,
 * cumulative, then _sum, then _count equal to the `+Inf` bucket. Returns the series' buckets.
 */
function histogramSeries(family: Family): Map<string, { buckets: [string, number][]; sum: number; count: number }> {
  const result = new Map<string, { buckets: [string, number][]; sum: number; count: number }>();
  let open: string | undefined;
  let stage: "buckets" | "sum" | "count" = "buckets";
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(rest);
    if (key !== open) {
      if (open !== undefined && stage !== "count") throw new Error(`${family.name}${open}: ended before _count`);
      if (result.has(key)) throw new Error(`${family.name}${key}: lines not together`);
      result.set(key, { buckets: [], sum: NaN, count: NaN });
      open = key;
      stage = "buckets";
    }
    const series = result.get(key)!;
    if (sample.name.endsWith("_bucket") && stage === "buckets") series.buckets.push([le!, sample.value]);
    else if (sample.name.endsWith("_sum") && stage === "buckets") (series.sum = sample.value), (stage = "sum");
    else if (sample.name.endsWith("_count") && stage === "sum") (series.count = sample.value), (stage = "count");
    else throw new Error(`${sample.name}${key} out of order`);
  }
  if (open !== undefined && stage !== "count") throw new Error(`${family.name}${open}: ended before _count`);
  for (const [key, { buckets, count }] of result) {
    expect(buckets.map(([le]) => le), `${family.name}${key} buckets`).toEqual([...DURATION_BUCKETS.map(String), "+Inf"]);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]![1], `${family.name}${key} cumulative`).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
    expect(buckets.at(-1)![1], `${family.name}${key} +Inf = _count`).toBe(count);
  }
  return result;
}

async function scrape(overrides = {}): Promise<Map<string, Family>> {
  const res = await call("/metrics", {}, overrides);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

function valueOf(families: Map<string, Family>, family: string, labels: Record<string, string>): number | undefined {
  const key = seriesKey(family, labels);
  return families.get(family)?.samples.find((s) => seriesKey(s.name, s.labels) === key)?.value;
}

const unique = (prefix: string) => `${prefix}_${crypto.randomUUID().slice(0, 8)}`;

describe("/metrics exposition", () => {
  it("has each family once, HELP then TYPE, its samples under it, every family with samples", async () => {
    recordMessage({ direction: "outbound", type: "sms", provider: "twilio", status: "pending" });
    recordProviderError("twilio", "21211");
    recordRateLimitHit("/api/v1/messages");
    recordProcessing("sms", "twilio", "success", 0.2);
    recordWebhook("twilio", "inbound_message", "processed");
    await call("/api/v1/messages");

    const families = await scrape();
    expect([...families.values()].map((f) => [f.name, f.type])).toEqual(Object.entries(FAMILIES));
    for (const family of families.values()) {
      expect(family.help.length, family.name).toBeGreaterThan(0);
      expect(family.samples.length, `${family.name} has samples`).toBeGreaterThan(0);
      if (family.type === "histogram") histogramSeries(family);
    }
    expect(valueOf(families, "queue_depth", { queue_name: "sms" })).toBeGreaterThanOrEqual(0);
  });

  it("gives every histogram series the whole bucket set, zeros included, cumulative, +Inf equal to _count", async () => {
    const provider = unique("hist");
    for (const seconds of [0.003, 0.2, 3, 42]) recordProcessing("email", provider, "error", seconds);
    // A series whose observations are all slow still has its low buckets, at zero.
    recordProcessing("email", provider, "success", 7);

    const families = await scrape();
    const series = histogramSeries(families.get("message_processing_duration_seconds")!);
    const errors = series.get(JSON.stringify({ message_type: "email", provider, outcome: "error" }))!;
    expect(errors.buckets.map(([, n]) => n)).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4]);
    expect(errors.sum).toBeCloseTo(45.203, 9);
    expect(errors.count).toBe(4);
    const successes = series.get(JSON.stringify({ message_type: "email", provider, outcome: "success" }))!;
    expect(successes.buckets.map(([, n]) => n)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    expect(successes.count).toBe(1);
  });

  it("escapes backslash, double quote and newline in label values", async () => {
    const route = `/odd\\path/"quoted"/${unique("x")}\nsecond line`;
    recordRateLimitHit(route);
    const res = await call("/metrics");
    const text = await res.text();
    const escaped = route.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    expect(text).toContain(`rate_limit_hits_total{route="${escaped}"} 1\n`);
    expect(valueOf(parseExposition(text), "rate_limit_hits_total", { route })).toBe(1);
  });
});

describe("counters recorded where events happen", () => {
  it("messages_total counts creations and status changes by direction, type, status and provider", async () => {
    const provider = unique("prov");
    recordMessage({ direction: "outbound", type: "sms", provider, status: "pending" });
    recordMessage({ direction: "outbound", type: "sms", provider, status: "pending" });
    recordMessage({ direction: "outbound", type: "sms", provider, status: "sent" });
    recordMessage({ direction: "inbound", type: "mms", provider, status: "delivered" });
    const families = await scrape();
    const mine = families.get("messages_total")!.samples.filter((s) => s.labels.provider === provider);
    expect(mine.map((s) => [s.labels, s.value])).toEqual([
      [{ direction: "inbound", type: "mms", status: "delivered", provider }, 1],
      [{ direction: "outbound", type: "sms", status: "pending", provider }, 2],
      [{ direction: "outbound", type: "sms", status: "sent", provider }, 1],
    ]);
  });

  it("provider_errors_total counts by code, folding codes past the cap and malformed ones into other", async () => {
    const provider = unique("errs");
    recordProviderError(provider, "21211");
    recordProviderError(provider, "21211");
    recordProviderError(provider, "timeout");
    recordProviderError(provider, "free text with spaces");
    for (let i = 0; i < MAX_ERROR_CODES_PER_PROVIDER + 5; i++) recordProviderError(provider, `code_${i}`);
    recordProviderError(provider, "21211"); // seen before the cap: still its own series

    const families = await scrape();
    const mine = new Map(families.get("provider_errors_total")!.samples.filter((s) => s.labels.provider === provider).map((s) => [s.labels.code!, s.value]));
    expect(mine.get("21211")).toBe(3);
    expect(mine.get("timeout")).toBe(1);
    // 21211, timeout and other take 3 of the 50 places: code_0 … code_46 get theirs.
    expect(mine.get("code_46")).toBe(1);
    expect(mine.has("code_47")).toBe(false);
    expect(mine.get("other")).toBe(1 + (MAX_ERROR_CODES_PER_PROVIDER + 5 - 47));
    expect(mine.size).toBe(MAX_ERROR_CODES_PER_PROVIDER);
  });

  it("rate_limit_hits_total counts a real 429 under its route template", async () => {
    const route = { route: "/api/v1/messages/{message_id}" };
    const before = valueOf(await scrape(), "rate_limit_hits_total", route) ?? 0;
    const headers = { "cf-connecting-ip": `198.51.100.${crypto.randomUUID()}` };
    const limit = { RATE_LIMIT_REQUESTS: "1", RATE_LIMIT_BURST: "1" };
    expect((await call(`/api/v1/messages/${crypto.randomUUID()}`, { headers }, limit)).status).toBe(404);
    expect((await call(`/api/v1/messages/${crypto.randomUUID()}`, { headers }, limit)).status).toBe(429);
    expect(valueOf(await scrape(), "rate_limit_hits_total", route)).toBe(before + 1);
  });

  it("are held in the isolate between flushes and reach the store in one flush", async () => {
    const store = env.METRICS.getByName("global");
    const first = unique("/flush-a");
    const second = unique("/flush-b");
    recordRateLimitHit(first);
    await flushSamples(env, true);
    recordRateLimitHit(second);
    recordRateLimitHit(second);
    await flushSamples(env); // within the interval of the last flush: nothing is sent
    const stored = async () =>
      (await store.snapshot()).filter((s) => [`route="${first}"`, `route="${second}"`].includes(s.labels)).map((s) => [s.labels, s.field, s.value]);
    expect(await stored()).toEqual([[`route="${first}"`, "value", 1]]);
    await flushSamples(env, true);
    expect(await stored()).toEqual([
      [`route="${first}"`, "value", 1],
      [`route="${second}"`, "value", 2],
    ]);
  });
});

describe("a scrape's dependencies", () => {
  it("answers with every family while Postgres is unreachable: no statement is issued", async () => {
    const families = await scrape({ DATABASE_URL: "postgres://root@127.0.0.1:9/none", DB_TIMEOUT_MS: "500" });
    expect([...families.keys()]).toEqual(Object.keys(FAMILIES));
    expect(families.get("queue_depth")!.samples.length).toBe(3);
  });

  it("answers without queue_depth samples while Redis is unreachable", async () => {
    const families = await scrape({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", REDIS_TIMEOUT_MS: "500", RATE_LIMIT_ENABLED: "false" });
    expect(families.get("queue_depth")!.samples).toEqual([]);
    expect(families.get("http_requests_total")!.samples.length).toBeGreaterThan(0);
  });
});
