// After a chaos run: the invariants, checked from three independent records — Postgres (what the
// service says), Redis (what is still owed), and the provider sandbox (what was really sent) —
// and the figures of the run.
import type Redis from "ioredis";
import type pg from "pg";
import { CONSUMER_GROUP, DLQ_STREAM, retryKey, streamKey } from "../../src/queue/keys.ts";
import type { ProviderSandbox, RecordedRequest } from "../provider-sandbox.ts";
import { recipientKey } from "../sandbox/shared.ts";
import type { FaultRecord } from "./faults.ts";
import type { InboundRecord, SendRecord } from "./load.ts";

const TYPES = ["sms", "mms", "email"] as const;
const FINAL = new Set(["delivered", "undelivered", "failed"]);
/** How many offending ids a failed check lists. */
const SHOW = 5;

/** An XADD of a message's stream entry as the Redis bridge ran it. */
export interface XaddRecord {
  time: number;
  ok: boolean;
  entryId?: string;
}

export interface Evidence {
  sends: SendRecord[];
  inbound: InboundRecord[];
  /** HTTP statuses of the callbacks the run redelivered itself (0: no answer) */
  redeliveries: number[];
  sandbox: ProviderSandbox;
  db: pg.Client;
  redis: Redis;
  backoff: { baseSeconds: number; maxSeconds: number };
  faults: FaultRecord[];
  /** the bridge's record of XADDs, by message id */
  xadds: Map<string, XaddRecord[]>;
  /** seconds from the end of the last fault until nothing was in flight; null if it never drained */
  drainS: number | null;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Report {
  figures: [string, string][];
  checks: Check[];
  /** what the provider and the service recorded for a few offending recipients */
  explanations: string[];
}

/** An offender: its line in the check's detail, and its recipient, for the timelines. */
type Offender = string | { text: string; to: string };

function check(name: string, offenders: Offender[], okDetail: string, what = "offending"): Check & { recipients: string[] } {
  const recipients = offenders.flatMap((o) => (typeof o === "string" ? [] : [o.to]));
  if (offenders.length === 0) return { name, ok: true, detail: okDetail, recipients };
  const texts = offenders.map((o) => (typeof o === "string" ? o : o.text));
  return { name, ok: false, detail: `${offenders.length} ${what}: ${texts.slice(0, SHOW).join(", ")}${texts.length > SHOW ? ", …" : ""}`, recipients };
}

/** One recipient's story, merged in time order: provider requests, callbacks, the message's events. */
async function timeline(e: Evidence, to: string): Promise<string> {
  const lines: [number, string][] = [];
  for (const r of e.sandbox.requests(to)) lines.push([Date.parse(r.time), `provider  ${r.method} ${r.path.split("/").pop()} → ${r.outcome}`]);
  for (const c of e.sandbox.callbacks(to)) lines.push([Date.parse(c.time), `callback  ${c.status} ${c.providerMessageId} → ${c.responseStatus ?? c.error ?? "not posted"}`]);
  const events = await rows<{ created_at: Date; type: string; data: unknown }>(
    e.db,
    `select e.created_at, e.type, e.data from message_events e join messages m on m.id = e.message_id
      where m.to_address = $1 order by e.created_at, e.id`,
    [to],
  );
  for (const ev of events) lines.push([ev.created_at.getTime(), `service   ${ev.type} ${JSON.stringify(ev.data)}`]);
  const ids = await rows<{ id: string }>(e.db, "select id from messages where to_address = $1", [to]);
  for (const x of ids.flatMap((m) => e.xadds.get(m.id) ?? [])) lines.push([x.time, `redis     XADD ${x.ok ? `ok ${x.entryId}` : "failed"}`]);
  lines.sort((a, b) => a[0] - b[0]);
  return [`${to}:`, ...lines.map(([t, text]) => `  ${new Date(t).toISOString().slice(11, 23)} ${text}`)].join("\n");
}

const isCreate = (r: RecordedRequest) =>
  r.method === "POST" && r.to !== null && (r.path.endsWith("/Messages.json") || r.path === "/v3/mail/send");

/** Twilio 21xxx and 4xx other than 408/429 are final answers; anything else may be retried. */
function permanent(label: string): boolean {
  const code = label.split(":")[0]!;
  if (/^\d{5}$/.test(code)) return code.startsWith("21");
  if (/^\d{3}$/.test(code)) return code.startsWith("4") && code !== "408" && code !== "429";
  return false;
}

function retryAfterSeconds(label: string): number {
  const [code, seconds] = label.split(":");
  return (code === "429" || code === "20429") && seconds ? Number(seconds) : 0;
}

/**
 * Backoff, as the provider saw it: between two create requests for one recipient, at least the
 * smallest delay the policy allows after the earlier one (attempt n waits min(cap, base × 2^(n−1))
 * × 0.8 at least) and never less than its Retry-After. The n-th request is at least attempt n, and
 * the delay grows with the attempt, so using n gives a lower bound that holds whatever happened in
 * between (a lookup, a crash).
 */
function backoffViolations(requests: RecordedRequest[], backoff: Evidence["backoff"]): { checked: number; offenders: Offender[] } {
  const byRecipient = new Map<string, RecordedRequest[]>();
  for (const r of requests.filter(isCreate)) byRecipient.set(r.to!, [...(byRecipient.get(r.to!) ?? []), r]);
  let checked = 0;
  const offenders: Offender[] = [];
  for (const [to, list] of byRecipient) {
    list.sort((a, b) => a.seq - b.seq);
    for (let n = 1; n < list.length; n++) {
      const earlier = list[n - 1]!;
      const label = earlier.outcome ?? "ok";
      // after a permanent answer only a crash between the answer and its record leads here
      if (permanent(label)) continue;
      const minimum = Math.max(0.8 * Math.min(backoff.maxSeconds, backoff.baseSeconds * 2 ** (n - 1)), retryAfterSeconds(label)) * 1000;
      const gap = Date.parse(list[n]!.time) - Date.parse(earlier.time);
      checked++;
      // 2 ms: both times are ISO strings, truncated to the millisecond
      if (gap < minimum - 2) offenders.push({ text: `${to}: request ${n + 1} ${gap} ms after "${label}", minimum ${Math.round(minimum)} ms`, to });
    }
  }
  return { checked, offenders };
}

/** What Redis still owes: stream entries delivered but not acknowledged, retries scheduled. */
export async function owedInRedis(redis: Redis): Promise<{ entries: number; retries: number }> {
  let entries = 0;
  let retries = 0;
  for (const type of TYPES) {
    const summary = (await redis.xpending(streamKey(type), CONSUMER_GROUP).catch(() => [0])) as [number, ...unknown[]];
    entries += Number(summary[0] ?? 0);
    retries += await redis.zcard(retryKey(type));
  }
  return { entries, retries };
}

/** How many items fall under each key. */
function countBy<T>(items: T[], keyOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  return counts;
}

async function rows<T>(db: pg.Client, text: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query(text, params)).rows as T[];
}

export async function inspect(e: Evidence): Promise<Report> {
  const checks: (Check & { recipients?: string[] })[] = [];
  const messages = await rows<{ id: string; type: string; status: string; to_address: string; attempts: number; error_code: string | null }>(
    e.db,
    "select id, type, status, to_address, attempts, error_code from messages where direction = 'outbound'",
  );
  const byId = new Map(messages.map((m) => [m.id, m]));
  const deadLetters = new Set((await rows<{ message_id: string }>(e.db, "select message_id from dead_letters")).map((r) => r.message_id));
  const providerAccepted = e.sandbox.accepted();
  const acceptedByProvider = countBy(providerAccepted, (a) => a.to);
  const accepted = e.sends.filter((s) => s.status === 201);
  const refusedSends = e.sends.filter((s) => s.status !== 201);

  checks.push(check("every accepted send (201) is stored", accepted.filter((s) => !s.id || !byId.has(s.id)).map((s) => `#${s.index}`), `${accepted.length} of ${accepted.length}`, "missing"));
  checks.push(
    check(
      "every stored message reached a final state",
      messages.filter((m) => !FINAL.has(m.status)).map((m) => ({ text: `${m.id} ${m.status}`, to: m.to_address })),
      `${messages.length} messages: delivered, undelivered or failed`,
      "not final",
    ),
  );
  const twice = await rows<{ message_id: string; n: string }>(
    e.db,
    `select message_id, count(*) as n from message_events where type = 'status_changed'
      and data->>'to' in ('delivered', 'undelivered', 'failed') group by message_id having count(*) > 1`,
  );
  const left = await rows<{ message_id: string; data: { from: string; to: string } }>(
    e.db,
    `select message_id, data from message_events where type = 'status_changed' and data->>'from' in ('delivered', 'undelivered', 'failed')`,
  );
  checks.push(
    check(
      "exactly one terminal state per message",
      [...twice.map((r) => `${r.message_id} entered a final state ${r.n} times`), ...left.map((r) => `${r.message_id} ${r.data.from} → ${r.data.to}`)],
      "no second final state, no move out of one",
    ),
  );
  checks.push(
    check(
      "no message sent twice (provider's record)",
      [...acceptedByProvider].filter(([, n]) => n > 1).map(([to, n]) => ({ text: `${to} ×${n}`, to })),
      `${providerAccepted.length} provider acceptances, one per recipient`,
      "recipients",
    ),
  );
  checks.push(
    check(
      "outcome agrees with the provider",
      messages.flatMap((m) => {
        const n = acceptedByProvider.get(recipientKey(m.to_address)) ?? 0;
        const to = m.to_address;
        if (m.status === "failed" && n > 0) return [{ text: `${m.id} failed (${m.error_code}) but the provider accepted it`, to }];
        if (m.status !== "failed" && n === 0) return [{ text: `${m.id} ${m.status} but the provider never accepted it`, to }];
        if ((m.status === "failed") !== deadLetters.has(m.id)) return [{ text: `${m.id} ${m.status}, dead letter ${deadLetters.has(m.id)}`, to }];
        return [];
      }),
      "delivered ⇔ accepted by the provider; failed ⇔ not accepted and dead-lettered",
    ),
  );
  const backoff = backoffViolations(e.sandbox.requests(), e.backoff);
  checks.push(check("every retry respected its backoff and Retry-After", backoff.offenders, `${backoff.checked} retry gaps checked`));
  // From the service's own record: an attempt after one it classified as permanent. (The
  // provider's record cannot tell: a worker killed after the provider answered never saw it.)
  const afterPermanent = await rows<{ message_id: string; to_address: string }>(
    e.db,
    `select distinct a.message_id, m.to_address from message_events a
       join message_events b on b.message_id = a.message_id and b.type = 'attempt' and b.created_at > a.created_at
       join messages m on m.id = a.message_id
      where a.type = 'attempt' and a.data->>'error_class' = 'permanent'`,
  );
  checks.push(check("no permanent failure retried", afterPermanent.map((r) => ({ text: r.message_id, to: r.to_address })), "no attempt after a permanent error"));

  const { entries: pendingEntries, retries: scheduledRetries } = await owedInRedis(e.redis);
  // Invariant 3 seen from the sweep: it has to enqueue a never-claimed message again only when the
  // message's XADD never reached Redis (the bridge records the XADDs it ran; one refused while
  // Redis was down is not among them). An entry that reached its stream before the sweep's first
  // re-enqueue and still needed it was dropped by a worker: acknowledged before its outcome was
  // recorded.
  const sweptAfterXadd = (
    await rows<{ message_id: string; to_address: string; first_sweep: Date }>(
      e.db,
      `select s.message_id, m.to_address, min(s.created_at) as first_sweep from message_events s join messages m on m.id = s.message_id
        where s.type = 'enqueued' and s.data->>'source' = 'sweep' and s.data->>'reason' = 'initial'
        group by s.message_id, m.to_address`,
    )
  ).filter((r) => (e.xadds.get(r.message_id) ?? []).some((x) => x.ok && x.time < r.first_sweep.getTime()));
  checks.push(
    check(
      "no stream entry dropped (the sweep re-enqueued only lost XADDs)",
      sweptAfterXadd.map((r) => ({ text: r.message_id, to: r.to_address })),
      "every message the sweep enqueued again had no entry in Redis",
    ),
  );
  checks.push({ name: "stream pending lists empty, no retry left scheduled", ok: pendingEntries === 0 && scheduledRetries === 0, detail: `${pendingEntries} pending entries, ${scheduledRetries} scheduled retries` });
  const sending = messages.filter((m) => m.status === "sending").length;
  checks.push({ name: "nothing left in sending", ok: sending === 0, detail: `${sending} in sending` });

  const inboundRows = await rows<{ provider_message_id: string; n: string }>(
    e.db,
    "select provider_message_id, count(*) as n from messages where direction = 'inbound' group by provider_message_id",
  );
  const inboundCount = new Map(inboundRows.map((r) => [r.provider_message_id, Number(r.n)]));
  checks.push(
    check(
      "each inbound webhook stored once",
      e.inbound.flatMap((i) => {
        const n = inboundCount.get(i.sid) ?? 0;
        const answered = i.answers.some((s) => s >= 200 && s < 300);
        return n > 1 || (answered && n === 0) ? [`${i.sid} stored ${n}× (answers ${i.answers.join("/")})`] : [];
      }),
      `${e.inbound.length} inbound messages, each delivered twice`,
    ),
  );
  checks.push({ name: "the queue drained after the last fault", ok: e.drainS !== null, detail: e.drainS === null ? "still in flight at the timeout" : `${e.drainS.toFixed(1)} s` });

  // Figures
  // Refusals by reason, with when they came: each should line up with a fault.
  const refused = new Map<string, { n: number; from: number; to: number }>();
  for (const s of refusedSends) {
    const reason = s.status === 0 ? `no answer (${s.error})` : `HTTP ${s.status}${s.error ? ` ${s.error}` : ""}`;
    const seen = refused.get(reason) ?? { n: 0, from: s.atS, to: s.atS };
    refused.set(reason, { n: seen.n + 1, from: Math.min(seen.from, s.atS), to: Math.max(seen.to, s.atS) });
  }
  const windows = countBy(refusedSends, (s) => String(Math.floor(s.atS / 10) * 10));
  const refusalTimeline = [...windows].sort((a, b) => Number(a[0]) - Number(b[0])).map(([from, n]) => `${from}–${Number(from) + 10} s: ${n}`).join(", ") || "none";
  const refusals = [...refused].sort((a, b) => b[1].n - a[1].n).map(([k, v]) => `${k} ${v.n} (at ${v.from.toFixed(0)}–${v.to.toFixed(0)} s)`).join(", ") || "none";
  // A refusal is honest only if nothing was stored: a stored message that was answered 503 is
  // sent anyway, and a client that retries without an idempotency key sends it twice.
  const storedTo = new Set(messages.map((m) => recipientKey(m.to_address)));
  const storedAnyway = countBy(
    refusedSends.filter((s) => storedTo.has(recipientKey(s.to))),
    (s) => (s.status === 0 ? "no answer" : `HTTP ${s.status}`),
  );
  const failedReasons = countBy(
    messages.filter((m) => m.status === "failed"),
    (m) => m.error_code ?? "?",
  );
  const retried = messages.filter((m) => m.attempts > 1);
  const callbacks = e.sandbox.callbacks();
  const webhookDeliveries =
    callbacks.filter((c) => c.responseStatus !== undefined && c.responseStatus < 300).length +
    e.redeliveries.filter((s) => s >= 200 && s < 300).length +
    e.inbound.reduce((n, i) => n + i.answers.filter((s) => s >= 200 && s < 300).length, 0);
  const effects = (await rows<{ n: string }>(e.db, "select count(*) as n from processed_webhook_events"))[0]?.n;
  const count = (status: string) => messages.filter((m) => m.status === status).length;
  const sweep = (await rows<{ reenqueued: string; leased: string }>(
    e.db,
    `select count(*) filter (where type = 'enqueued' and data->>'source' = 'sweep') as reenqueued,
            count(*) filter (where type = 'status_changed' and data->>'reason' = 'lease_expired') as leased
       from message_events`,
  ))[0];
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const lastFault = e.faults.reduce((last, f) => Math.max(last, f.endedS), 0);

  const figures: [string, string][] = [
    ["sends attempted", String(e.sends.length)],
    ["accepted (201)", String(accepted.length)],
    ["refused (not stored or unknown to the client)", refusals],
    ["refusals per 10 s of load", refusalTimeline],
    ["refused but stored all the same", list(storedAnyway)],
    ["sent (provider acceptances)", String(providerAccepted.length)],
    ["delivered", String(count("delivered"))],
    ["failed, by reason", `${count("failed")}: ${list(failedReasons)}`],
    ["retried", `${retried.length} messages, ${retried.reduce((n, m) => n + m.attempts - 1, 0)} retries`],
    ["recovered by the sweep", `${sweep?.reenqueued} re-enqueued (enqueue lost or late), ${sweep?.leased} stuck in sending past the lease`],
    ["dead letters", `${deadLetters.size} rows, ${await e.redis.xlen(DLQ_STREAM)} in ${DLQ_STREAM}`],
    ["webhook deliveries answered 2xx", String(webhookDeliveries)],
    ["duplicates prevented (deliveries − distinct events)", String(webhookDeliveries - Number(effects))],
    ["callbacks the service could not take (redelivered later)", String(callbacks.filter((c) => c.responseStatus === undefined || c.responseStatus >= 300).length)],
    ["faults", [...e.faults].sort((a, b) => a.startedS - b.startedS).map((f) => `${f.label} at ${f.startedS.toFixed(0)} s`).join("; ")],
    ["last fault over at", `${lastFault.toFixed(1)} s`],
    ["time to drain after the last fault", e.drainS === null ? "did not drain" : `${e.drainS.toFixed(1)} s`],
  ];
  const explanations: string[] = [];
  for (const c of checks.filter((c) => !c.ok)) {
    for (const to of (c.recipients ?? []).slice(0, 2)) explanations.push(`[${c.name}] ${await timeline(e, to)}`);
  }
  return { figures, checks: checks.map(({ recipients: _, ...c }) => c), explanations };
}

export function printReport(report: Report): void {
  const width = Math.max(...report.figures.map(([k]) => k.length), ...report.checks.map((c) => c.name.length));
  console.log("\nfigure".padEnd(width + 3) + "value");
  for (const [k, v] of report.figures) console.log(`${k.padEnd(width + 2)}${v}`);
  console.log("\ncheck".padEnd(width + 3) + "result");
  for (const c of report.checks) console.log(`${c.name.padEnd(width + 2)}${c.ok ? "PASS" : "FAIL"}  ${c.detail}`);
  if (report.explanations.length > 0) console.log(`\nwhat was recorded for some offenders:\n${report.explanations.join("\n")}`);
}
