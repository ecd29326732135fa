// After a chaos run: the invariants, checked from three independent records — Postgres (what the
// service says), Redis (what is still owed), and the provider sandbox (what was really sent) —
// and the figures of the run.
import type Redis from "ioredis";
import type pg from "pg";
import { Webhook } from "standardwebhooks";
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
  /** when the watchdog restarted wrangler dev because its local proxy stopped answering */
  watchdogRestarts: string[];
  /** the customer's status webhook endpoint (failing and hanging at times) and when it was owed nothing */
  customer: { endpointId: string; secret: string; receiver: string; settledS: number | null };
  /** SIDs of the Twilio messages inserted as sent by someone else */
  foreignSids: string[];
  /** the calibration: capacity measured, rate offered */
  capacity: { measuredPerS: number; offeredPerS: number; multiple: number; calibrationSends: number };
  /** epoch ms of the load's start (the faults' and sends' seconds count from it) */
  loadStartedAtMs: number;
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
 * Backoff, as the provider saw it: between two create requests for one message, at least the
 * smallest delay the policy allows after the earlier one (counted attempt n waits min(cap, base ×
 * 2^(n−1)) × 0.8 at least) and never less than its Retry-After. Requests answered 429 or 401 are
 * not counted attempts (the service holds the message instead), so they do not raise n.
 */
function backoffViolations(requests: RecordedRequest[], backoff: Evidence["backoff"]): { checked: number; offenders: Offender[] } {
  // per message (several messages may share a recipient); a request without our id by recipient
  const byRecipient = new Map<string, RecordedRequest[]>();
  for (const r of requests.filter(isCreate)) byRecipient.set(r.messageId ?? r.to!, [...(byRecipient.get(r.messageId ?? r.to!) ?? []), r]);
  let checked = 0;
  const offenders: Offender[] = [];
  for (const [to, list] of byRecipient) {
    list.sort((a, b) => a.seq - b.seq);
    // Throttling (429) and refused credentials do not use up an attempt (the circuit breaker's
    // classes): they do not grow the backoff, and after a 429 the next try waits its Retry-After.
    let counted = 0;
    for (let n = 1; n < list.length; n++) {
      const earlier = list[n - 1]!;
      const label = earlier.outcome ?? "ok";
      const uncounted = /^(429|20429|401|20003)(:|$)/.test(label);
      if (!uncounted) counted++;
      // after a permanent answer only a crash between the answer and its record leads here
      if (permanent(label)) continue;
      const exponential = uncounted ? 0 : 0.8 * Math.min(backoff.maxSeconds, backoff.baseSeconds * 2 ** (counted - 1));
      const minimum = Math.max(exponential, retryAfterSeconds(label)) * 1000;
      const gap = Date.parse(list[n]!.time) - Date.parse(earlier.time);
      checked++;
      // 2 ms: both times are ISO strings, truncated to the millisecond
      if (gap < minimum - 2) offenders.push({ text: `${to}: request ${n + 1} ${gap} ms after "${label}", minimum ${Math.round(minimum)} ms`, to: list[n]!.to! });
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

interface MessageRow {
  id: string;
  type: string;
  status: string;
  to_address: string;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  provider_message_id: string | null;
  send_index: string | null;
  body: string | null;
  created_at: Date;
}

/** The share, as a percentage with one decimal. */
const pct = (n: number, of: number) => (of === 0 ? "0 %" : `${((100 * n) / of).toFixed(1)} %`);

export async function inspect(e: Evidence): Promise<Report> {
  const checks: (Check & { recipients?: string[] })[] = [];
  const messages = await rows<MessageRow>(
    e.db,
    `select id, type, status, to_address, attempts, error_code, error_message, provider_message_id, metadata->>'chaos_send' as send_index, body, created_at
       from messages where direction = 'outbound'`,
  );
  const byId = new Map(messages.map((m) => [m.id, m]));
  const byIndex = new Map<number, MessageRow[]>();
  for (const m of messages) if (m.send_index !== null) byIndex.set(Number(m.send_index), [...(byIndex.get(Number(m.send_index)) ?? []), m]);
  const deadLetters = new Set((await rows<{ message_id: string }>(e.db, "select message_id from dead_letters")).map((r) => r.message_id));
  // Messages with an attempt the service classified as permanent: the only acceptable failures.
  const permanentFailure = new Set(
    (await rows<{ message_id: string }>(e.db, "select distinct message_id from message_events where type = 'attempt' and data->>'error_class' = 'permanent'")).map((r) => r.message_id),
  );
  const providerAccepted = e.sandbox.accepted();
  const acceptedByMessage = countBy(
    providerAccepted.filter((a) => a.messageId),
    (a) => a.messageId!,
  );
  const providerById = new Map(providerAccepted.map((a) => [a.id, a]));
  const foreignIds = new Set(e.foreignSids);
  const accepted = e.sends.filter((s) => s.status === 201);
  const refusedSends = e.sends.filter((s) => s.status !== 201);
  const loadSends = e.sends.filter((s) => s.kind !== "calibration");
  const firstFaultS = Math.min(...e.faults.map((f) => f.startedS));
  const phaseOf = (s: SendRecord) => (s.kind === "calibration" ? "calibration" : (s.tries[0]?.startedS ?? s.atS) < firstFaultS ? "before the first fault" : "with faults");
  const held = messages.filter((m) => m.status === "held");

  checks.push(check("every accepted send (201) is stored", accepted.filter((s) => !s.id || !byId.has(s.id)).map((s) => `#${s.index}`), `${accepted.length} of ${accepted.length}`, "missing"));
  checks.push(
    check(
      "every stored message reached a final state",
      messages.filter((m) => !FINAL.has(m.status) && m.status !== "held").map((m) => ({ text: `${m.id} ${m.status}`, to: m.to_address })),
      `${messages.length - held.length} messages: delivered, undelivered or failed (held: see below)`,
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
  const sharedSid = countBy(
    messages.filter((m) => m.provider_message_id),
    (m) => m.provider_message_id!,
  );
  checks.push(
    check(
      "no provider SID on two messages",
      [...sharedSid].filter(([, n]) => n > 1).map(([sid, n]) => ({ text: `${sid} on ${n} messages`, to: messages.find((m) => m.provider_message_id === sid)!.to_address })),
      `${sharedSid.size} provider ids, each on one message`,
      "provider ids",
    ),
  );
  // Identical messages (same type, recipient and text) are interchangeable: after an ambiguous
  // attempt, reconcile pairs our unresolved twins with the provider's copies in time order
  // (src/queue/reconcile.ts), so which of two twins' requests made which copy is not what counts;
  // how many copies the recipient got is. The provider's record is compared per content group.
  const contentOf = (m: MessageRow) => `${m.type}|${recipientKey(m.to_address)}|${m.body ?? ""}`;
  const groups = new Map<string, { messages: MessageRow[]; copies: number }>();
  for (const m of messages) {
    const g = groups.get(contentOf(m)) ?? { messages: [], copies: 0 };
    g.messages.push(m);
    groups.set(contentOf(m), g);
  }
  for (const a of providerAccepted) {
    const m = a.messageId ? byId.get(a.messageId) : undefined;
    if (m) groups.get(contentOf(m))!.copies++;
  }
  checks.push(
    check(
      "nothing sent twice (provider copies per message, twins counted together)",
      [...groups.values()].flatMap((g) => {
        const owed = g.messages.filter((m) => m.status !== "failed" && m.status !== "held").length;
        const m = g.messages[0]!;
        return g.copies > Math.max(owed, 1) || (g.messages.length === 1 && g.copies > 1)
          ? [{ text: `${g.messages.map((x) => x.id).join("+")} (${g.messages.length} messages, ${owed} sent by our record): ${g.copies} provider copies`, to: m.to_address }]
          : [];
      }),
      `${providerAccepted.length} provider acceptances for ${groups.size} distinct messages (${[...groups.values()].filter((g) => g.messages.length > 1).length} groups of identical twins)`,
      "groups",
    ),
  );
  checks.push(
    check(
      "every provider id recorded has its provider record",
      messages.flatMap((m) => {
        if (!m.provider_message_id) return [];
        const record = providerById.get(m.provider_message_id);
        const to = m.to_address;
        const maker = record?.messageId ? byId.get(record.messageId) : undefined;
        if (foreignIds.has(m.provider_message_id)) return [{ text: `${m.id} took ${m.provider_message_id}, someone else's message`, to }];
        if (!record) return [{ text: `${m.id} has ${m.provider_message_id}, unknown to the provider`, to }];
        if (!maker || contentOf(maker) !== contentOf(m)) return [{ text: `${m.id} has ${m.provider_message_id}, which the provider sent for ${record.messageId}`, to }];
        return [];
      }),
      `${messages.filter((m) => m.provider_message_id).length} provider ids, each the provider's record of that message or of an identical twin (${messages.filter((m) => m.provider_message_id && providerById.get(m.provider_message_id)?.messageId !== m.id).length} of a twin)`,
    ),
  );
  checks.push(
    check(
      "no provider send without its message",
      providerAccepted.filter((a) => !a.messageId || !byId.has(a.messageId)).map((a) => ({ text: `${a.id} to ${a.to} (message id ${a.messageId})`, to: a.to })),
      `${providerAccepted.length} provider sends, each for a stored message (${foreignIds.size} foreign Twilio messages ignored)`,
    ),
  );
  checks.push(
    check(
      "outcome agrees with the provider",
      [
        ...[...groups.values()].flatMap((g) => {
          const owed = g.messages.filter((m) => m.status !== "failed" && m.status !== "held").length;
          const m = g.messages[0]!;
          return g.copies < owed ? [{ text: `${g.messages.map((x) => `${x.id} ${x.status}`).join(", ")}: ${owed} sent by our record, ${g.copies} provider copies`, to: m.to_address }] : [];
        }),
        ...messages
          .filter((m) => (m.status === "failed") !== deadLetters.has(m.id))
          .map((m) => ({ text: `${m.id} ${m.status}, dead letter ${deadLetters.has(m.id)}`, to: m.to_address })),
      ],
      "messages not failed ⇔ provider copies (per group of twins); failed ⇔ dead-lettered",
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

  // Idempotency: one stored message per logical send (a keyed client's retries included), and
  // every id its answers named is that message.
  const keyed = e.sends.filter((s) => s.key);
  checks.push(
    check(
      "one message per Idempotency-Key (and per send)",
      e.sends.flatMap((s) => {
        const stored = byIndex.get(s.index) ?? [];
        // a 503 "may have been stored" names an id that may never have been committed; a 201 names the row
        const created = new Set(s.tries.filter((t) => t.status === 201).map((t) => t.id));
        if (stored.length > 1) return [{ text: `#${s.index}${s.key ? ` (key)` : ""} stored ${stored.length}×`, to: s.to }];
        if (created.size > 1 || (created.size === 1 && !stored.some((m) => created.has(m.id)))) return [{ text: `#${s.index} 201s named ${[...created].join(", ")}`, to: s.to }];
        return [];
      }),
      `${keyed.length} keyed sends (${keyed.reduce((n, s) => n + s.tries.length, 0)} requests), ${e.sends.length - keyed.length} without a key: each stored at most once`,
    ),
  );

  // Answers against the truth. A refusal that lies: a final 4xx/5xx that did not say "may have
  // been stored", for a send that was stored all the same.
  const lies = refusedSends.filter((s) => s.status >= 400 && !s.tries.at(-1)?.mayHaveBeenStored && (byIndex.get(s.index)?.length ?? 0) > 0);
  const keyedLies = lies.filter((s) => s.key);
  const keylessRefusals = refusedSends.filter((s) => !s.key);
  const keylessLies = lies.filter((s) => !s.key);
  checks.push({
    name: "no refusal of a stored send (keyed: 0; keyless: ≤ 1 % of refusals)",
    ok: keyedLies.length === 0 && keylessLies.length <= 0.01 * keylessRefusals.length,
    detail:
      `with a key ${keyedLies.length} of ${refusedSends.length - keylessRefusals.length} final refusals; without ${keylessLies.length} of ${keylessRefusals.length} (${pct(keylessLies.length, keylessRefusals.length)})` +
      (lies.length ? `: ${lies.slice(0, SHOW).map((s) => `#${s.index} ${s.status} ${s.error ?? ""} (${phaseOf(s)})`).join(", ")}` : ""),
  });
  const sentAfterRefusal = refusedSends.filter((s) => (byIndex.get(s.index) ?? []).some((m) => (acceptedByMessage.get(m.id) ?? 0) > 0));
  const acceptedNotDone = accepted.flatMap((s) => {
    const m = s.id ? byId.get(s.id) : undefined;
    if (!m) return [];
    if (["delivered", "undelivered", "sent"].includes(m.status)) return [];
    if (m.status === "failed" && permanentFailure.has(m.id)) return [];
    return [{ text: `#${s.index} ${m.id} ${m.status}${m.error_code ? ` (${m.error_code})` : ""}`, to: m.to_address }];
  });
  checks.push(check("every 201 ended sent or failed for a permanent reason", acceptedNotDone, `${accepted.length} accepted sends`));
  checks.push(
    check(
      "no message failed for a credential error, an outage or throttling",
      messages.filter((m) => m.status === "failed" && !permanentFailure.has(m.id)).map((m) => ({ text: `${m.id} failed (${m.error_code}: ${m.error_message})`, to: m.to_address })),
      `${messages.filter((m) => m.status === "failed").length} failed, each for a permanent provider error`,
    ),
  );
  checks.push(
    check(
      "no message left held",
      held.map((m) => ({ text: `${m.id} held (${m.error_code}: ${m.error_message})`, to: m.to_address })),
      "none held at the end",
    ),
  );

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
  const customer = await customerWebhooks(e, messages);
  checks.push(...customer.checks);

  // Figures
  // Refusals by reason, with when they came: each should line up with a fault.
  const refused = new Map<string, { n: number; from: number; to: number }>();
  for (const s of refusedSends.filter((s) => s.kind !== "calibration")) {
    const reason = s.status === 0 ? `no answer (${s.error})` : `HTTP ${s.status}${s.error ? ` ${s.error}` : ""}`;
    const seen = refused.get(reason) ?? { n: 0, from: s.atS, to: s.atS };
    refused.set(reason, { n: seen.n + 1, from: Math.min(seen.from, s.atS), to: Math.max(seen.to, s.atS) });
  }
  const windows = countBy(
    refusedSends.filter((s) => s.kind !== "calibration"),
    (s) => String(Math.floor(s.atS / 10) * 10),
  );
  const refusalTimeline = [...windows].sort((a, b) => Number(a[0]) - Number(b[0])).map(([from, n]) => `${from}–${Number(from) + 10} s: ${n}`).join(", ") || "none";
  const refusals = [...refused].sort((a, b) => b[1].n - a[1].n).map(([k, v]) => `${k} ${v.n} (at ${v.from.toFixed(0)}–${v.to.toFixed(0)} s)`).join(", ") || "none";
  // Refused but stored, by what the client was told, with or without a key, and when.
  const storedAnyway = countBy(
    refusedSends.filter((s) => (byIndex.get(s.index)?.length ?? 0) > 0),
    (s) => `${s.key ? "key" : "no key"}, ${phaseOf(s)}, ${s.status === 0 ? "no answer" : s.tries.at(-1)?.mayHaveBeenStored ? "503 may have been stored" : `HTTP ${s.status}`}`,
  );
  const refusedByPhase = countBy(refusedSends, (s) => `${s.key ? "key" : "no key"}, ${phaseOf(s)}`);
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
  const sweep = (await rows<{ reenqueued: string; retries: string; leased: string }>(
    e.db,
    `select count(*) filter (where type = 'enqueued' and data->>'source' = 'sweep' and data->>'reason' = 'initial') as reenqueued,
            count(*) filter (where type = 'enqueued' and data->>'source' = 'sweep' and data->>'reason' = 'scheduled_retry') as retries,
            count(*) filter (where type = 'status_changed' and data->>'reason' = 'lease_expired') as leased
       from message_events`,
  ))[0];
  // The longest any message waited for its outcome: from its creation to its first move to sent
  // or to a final state.
  const waits = await rows<{ id: string; wait_s: number; created_at: Date }>(
    e.db,
    `select m.id, m.created_at, extract(epoch from min(ev.created_at) - m.created_at)::float8 as wait_s
       from messages m join message_events ev on ev.message_id = m.id
      where m.direction = 'outbound' and ev.type = 'status_changed' and ev.data->>'to' in ('sent', 'delivered', 'undelivered', 'failed')
      group by m.id, m.created_at order by wait_s desc`,
  );
  const longest = waits[0];
  const p99Wait = waits[Math.floor(waits.length / 100)];
  // Attempts that did not use up one of the message's attempts: the circuit breaker's classes
  // (credentials, outage, throttling) and ambiguous outcomes.
  const uncounted = await rows<{ reason: string; n: string }>(
    e.db,
    `select coalesce(data->>'error_class', '?') as reason, count(*) as n from message_events
      where type = 'attempt' and data->>'counted' = 'false' group by 1 order by 2 desc`,
  );
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  // The hang of issue 18: requests in flight when workerd was killed, and how each one ended.
  const evict = e.faults.find((f) => f.label.startsWith("workerd killed"));
  const caught = evict ? e.sends.flatMap((s) => s.tries).filter((t) => t.startedS <= evict.startedS && t.atS >= evict.startedS) : [];
  const caughtOutcomes = countBy(caught, (t) => (t.status === 0 ? `no answer (${t.error})` : `HTTP ${t.status}`));
  const slowest = caught.reduce((max, t) => Math.max(max, t.atS - t.startedS), 0);
  const lastFault = e.faults.reduce((last, f) => Math.max(last, f.endedS), 0);
  const loadAccepted = loadSends.filter((s) => s.status === 201).length;
  const kinds = countBy(loadSends, (s) => s.kind);

  const figures: [string, string][] = [
    ["send capacity measured (calibration)", `${e.capacity.measuredPerS.toFixed(1)} sends/s accepted (${e.capacity.calibrationSends} calibration sends)`],
    ["load offered", `${e.capacity.offeredPerS.toFixed(1)} send slots/s = ${(e.capacity.offeredPerS / Math.max(0.1, e.capacity.measuredPerS)).toFixed(2)}× capacity (profile: ${e.capacity.multiple}×, within its cap)`],
    ["sends (load)", `${loadSends.length}: ${list(kinds)}; ${loadSends.filter((s) => s.key).length} with an Idempotency-Key (${loadSends.reduce((n, s) => n + s.tries.length, 0)} requests)`],
    ["accepted (201)", `${loadAccepted} of ${loadSends.length} (${pct(loadAccepted, loadSends.length)}); keyed ${loadSends.filter((s) => s.key && s.status === 201).length} of ${loadSends.filter((s) => s.key).length}`],
    ["refused (final answer), by reason", refusals],
    ["refused (final answer), by key and phase", list(refusedByPhase)],
    ["refusals per 10 s of load", refusalTimeline],
    ["refused but stored all the same", list(storedAnyway)],
    ["refused but sent", `${sentAfterRefusal.length} (key ${sentAfterRefusal.filter((s) => s.key).length}, no key ${sentAfterRefusal.filter((s) => !s.key).length})`],
    ["sent (provider acceptances)", String(providerAccepted.length)],
    ["delivered", String(count("delivered"))],
    ["failed, by reason", `${count("failed")}: ${list(failedReasons)}`],
    ["held at the end", String(held.length)],
    ["failed attempts not counted against the message (by class)", uncounted.map((c) => `${c.reason} ${c.n}`).join(", ") || "none"],
    ["retried", `${retried.length} messages, ${retried.reduce((n, m) => n + m.attempts - 1, 0)} retries`],
    [
      "recovered by the sweep",
      `${sweep?.reenqueued} first entries re-enqueued (XADD lost or late), ${sweep?.retries} due retries enqueued (their schedule lost with Redis), ${sweep?.leased} stuck in sending past the lease`,
    ],
    ["dead letters", `${deadLetters.size} rows, ${await e.redis.xlen(DLQ_STREAM)} in ${DLQ_STREAM}`],
    ["webhook deliveries answered 2xx", String(webhookDeliveries)],
    ["status webhooks to the customer's endpoint", customer.figure],
    ["duplicates prevented (deliveries − distinct events)", String(webhookDeliveries - Number(effects))],
    ["callbacks the service could not take (redelivered later)", String(callbacks.filter((c) => c.responseStatus === undefined || c.responseStatus >= 300).length)],
    ["faults", [...e.faults].sort((a, b) => a.startedS - b.startedS).map((f) => `${f.label} at ${f.startedS.toFixed(0)}–${f.endedS.toFixed(0)} s`).join("; ")],
    ["send requests in flight when workerd was killed", `${caught.length}: ${list(caughtOutcomes)}; the slowest ended after ${slowest.toFixed(1)} s`],
    ["wrangler dev restarted by the watchdog (local proxy not answering)", e.watchdogRestarts.length ? `${e.watchdogRestarts.length}: ${e.watchdogRestarts.join(", ")} (seconds of the run)` : "0"],
    ["last fault over at", `${lastFault.toFixed(1)} s`],
    ["time to drain after the last fault", e.drainS === null ? "did not drain" : `${e.drainS.toFixed(1)} s`],
    [
      "longest wait for a message's outcome",
      longest
        ? `${longest.wait_s.toFixed(1)} s (${longest.id}, created at ${((longest.created_at.getTime() - e.loadStartedAtMs) / 1000).toFixed(0)} s); p99 ${p99Wait?.wait_s.toFixed(1)} s over ${waits.length} messages`
        : "none",
    ],
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

/**
 * The customer's status webhook endpoint answered 500 to every 9th request and never answered
 * every 97th: each final status (delivered, undelivered, failed) must have its event, and each
 * event must have reached the endpoint with a 2xx answer and a valid signature, checked against
 * the receiver's own record (verified with the `standardwebhooks` package, as a customer would).
 */
async function customerWebhooks(e: Evidence, messages: MessageRow[]): Promise<{ checks: Check[]; figure: string }> {
  const events = await rows<{ id: string; message_id: string; type: string; status: string; attempts: number }>(
    e.db,
    "select id, message_id, type, status, attempts from webhook_events where endpoint_id = $1",
    [e.customer.endpointId],
  );
  const received = e.sandbox.receiver.received(e.customer.receiver);
  const verifier = new Webhook(e.customer.secret);
  const byId = new Map<string, { answers: string[]; badSignature: number }>();
  for (const r of received) {
    const id = r.headers["webhook-id"] ?? "";
    const seen = byId.get(id) ?? { answers: [], badSignature: 0 };
    seen.answers.push(r.answer);
    try {
      verifier.verify(r.rawBody, { "webhook-id": id, "webhook-timestamp": r.headers["webhook-timestamp"] ?? "", "webhook-signature": r.headers["webhook-signature"] ?? "" });
    } catch {
      seen.badSignature++;
    }
    byId.set(id, seen);
  }
  const ok = (answer: string) => /^2\d\d$/.test(answer) || answer.startsWith("slow:");
  const eventKeys = new Set(events.map((ev) => `${ev.message_id}|${ev.type}`));
  const missing = messages.filter((m) => FINAL.has(m.status) && !eventKeys.has(`${m.id}|message.${m.status}`));
  const undelivered = events.filter((ev) => ev.status !== "delivered" || !(byId.get(ev.id)?.answers.some(ok) ?? false));
  const unsigned = [...byId].filter(([, v]) => v.badSignature > 0).map(([id, v]) => `${id}: ${v.badSignature} deliveries with a signature that does not verify`);
  const failedAnswers = received.filter((r) => r.answer === "500").length;
  const hangs = received.filter((r) => r.answer === "hang").length;
  const mostTries = Math.max(0, ...[...byId.values()].map((v) => v.answers.length));
  return {
    checks: [
      check(
        "every final status has its status webhook event",
        missing.map((m) => ({ text: `${m.id} ${m.status} without a message.${m.status} event`, to: m.to_address })),
        `${events.length} events for ${messages.filter((m) => FINAL.has(m.status)).length} final outbound messages`,
      ),
      check(
        "every status webhook reached the failing, hanging customer endpoint (2xx, per its own record)",
        [...undelivered.map((ev) => `${ev.id} (${ev.type}) ${ev.status} after ${ev.attempts} attempts, receiver saw ${byId.get(ev.id)?.answers.join("/") ?? "nothing"}`), ...unsigned],
        `${events.length} events delivered, every delivery's signature verified; ${e.customer.settledS === null ? "still owed at the end of the wait" : `nothing owed ${e.customer.settledS.toFixed(1)} s after the last fault`}`,
      ),
    ],
    figure: `${events.length} events, ${received.length} deliveries (${failedAnswers} answered 500, ${hangs} hung), at most ${mostTries} per event`,
  };
}
