// One attempt for a batch of messages, shared by the QueueWorker and sync mode (DESIGN.md §2):
// claim in Postgres with a compare-and-set (invariant 2), call the provider with bounded
// concurrency, and record every outcome in one statement. Redis work (ack, retry schedule, dead
// letters) is returned to the caller, which sends it only after this commit (invariant 3).
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { uuidv7 } from "../ids";
import { errorFields, log } from "../log";
import { providerFor } from "../providers";
import { ProviderError, type ErrorClass, type OutboundMessage, type Provider } from "../providers/types";
import type { Row } from "../services/representation";
import type { Channel } from "../validation/address";
import { backoffSeconds } from "./backoff";

export interface Outcome {
  id: string;
  type: Channel;
  status: "sent" | "retry" | "failed";
  attempt: number;
  durationMs: number;
  providerName: string;
  providerMessageId?: string;
  providerStatus?: string;
  httpStatus?: number;
  errorClass?: ErrorClass;
  errorCode?: string;
  errorMessage?: string;
  /** refused before any provider call (opt-out) */
  notSent?: boolean;
  /** the provider may have accepted it despite the error */
  ambiguous?: boolean;
  /** for retries: when, in epoch ms */
  dueAt?: number;
  delaySeconds?: number;
}

export interface BatchResult {
  outcomes: Outcome[];
  /** retries to schedule in Redis: member `${id}:${attempt}` scored by due time */
  retries: { type: Channel; member: string; dueAt: number }[];
  /** dead letters to append to message_dlq */
  deadLetters: { id: string; type: Channel; errorClass: string; errorCode: string }[];
}

function toOutbound(row: Row): OutboundMessage {
  return {
    id: row.id as string,
    type: row.type as Channel,
    from: row.from_address as string,
    to: row.to_address as string,
    body: (row.body as string | null) ?? null,
    attachments: (row.attachments as string[]) ?? [],
    metadata: (row.metadata as Record<string, unknown>) ?? {},
    attempt: Number(row.attempts),
    createdAt: new Date(row.created_at as string).toISOString(),
    ambiguousAttempt: Boolean(row.ambiguous_attempt),
    optedOut: Boolean(row.opted_out),
  };
}

/**
 * Compare-and-set from a claimable status to `sending`, one statement for the batch. Rows another
 * transaction holds are skipped, not waited for; `attempts` is bumped and serves as the fencing
 * token for recording the outcome.
 */
export async function claim(db: Database, ids: string[]): Promise<OutboundMessage[]> {
  if (ids.length === 0) return [];
  const rows = await db.run<Row>(sql`
    with candidates as (
      select id, status from messages
       where id = any(${`{${ids.join(",")}}`}::uuid[])
         and status in ('pending', 'queued', 'retry')
         and (next_attempt_at is null or next_attempt_at <= now())
       for update skip locked),
    claimed as (
      update messages m set status = 'sending', attempts = m.attempts + 1, next_attempt_at = null, updated_at = now()
        from candidates c where m.id = c.id
      returning m.*, c.status as previous_status),
    ev as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'status_changed', jsonb_build_object('from', previous_status, 'to', 'sending', 'source', 'worker')
        from claimed)
    select c.*, (c.type <> 'email' and exists (
             select 1 from opt_outs o where o.sender = c.from_address and o.recipient = c.to_address)) as opted_out
      from claimed c`);
  return rows.map(toOutbound);
}

function ambiguousPolicy(config: Config, provider: Provider): "retry" | "fail" | "reconcile" {
  const policy = config.AMBIGUOUS_SEND_POLICY ?? "reconcile";
  if (policy === "reconcile" && !provider.lookup) return "retry";
  return policy;
}

async function attempt(config: Config, message: OutboundMessage): Promise<Outcome> {
  const provider = providerFor(config, message.type);
  const started = performance.now();
  const base = { id: message.id, type: message.type, attempt: message.attempt, providerName: provider.name };
  try {
    // The recipient texted STOP to this sender: Twilio would refuse it too (21610); do not call it.
    if (message.optedOut) throw new ProviderError("permanent", "21610", "Attempt to send to unsubscribed recipient", { notSent: true });
    // An earlier attempt may have reached the provider: ask before sending again.
    if (message.ambiguousAttempt && ambiguousPolicy(config, provider) === "reconcile") {
      const found = await provider.lookup!(message);
      if (found) return { ...base, status: "sent", durationMs: performance.now() - started, ...found };
    }
    const result = await provider.send(message);
    return { ...base, status: "sent", durationMs: performance.now() - started, ...result };
  } catch (error) {
    const durationMs = performance.now() - started;
    const failure =
      error instanceof ProviderError
        ? error
        : new ProviderError("transient", "network_error", error instanceof Error ? error.message : String(error));
    const exhausted = message.attempt >= config.QUEUE_MAX_ATTEMPTS;
    const giveUp =
      failure.errorClass === "permanent" || exhausted || (failure.opts.ambiguous === true && ambiguousPolicy(config, provider) === "fail");
    const common = {
      ...base,
      durationMs,
      notSent: failure.opts.notSent,
      ambiguous: failure.opts.ambiguous,
      httpStatus: failure.opts.httpStatus,
      errorClass: failure.errorClass,
      errorCode: failure.code,
      errorMessage: failure.message,
    };
    if (giveUp) return { ...common, status: "failed" };
    const backoff = backoffSeconds(message.attempt, { baseSeconds: config.QUEUE_RETRY_DELAY, maxSeconds: config.QUEUE_RETRY_MAX_DELAY }, failure.opts.retryAfter);
    // A provider that cannot be asked is reconciled by its events instead: SendGrid's `processed`
    // moves the message to sent and the retry finds nothing to claim. Give them time to arrive.
    const awaitEvents = failure.opts.ambiguous === true && !provider.lookup && (config.AMBIGUOUS_SEND_POLICY ?? "reconcile") === "reconcile";
    const delaySeconds = awaitEvents ? Math.max(backoff, config.RECONCILE_WINDOW_SECONDS) : backoff;
    return { ...common, status: "retry", delaySeconds, dueAt: Date.now() + delaySeconds * 1000 };
  }
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  });
  await Promise.all(runners);
  return results;
}

function eventsFor(o: Outcome) {
  const events: { id: string; type: string; data: Record<string, unknown> }[] = [];
  const attemptData: Record<string, unknown> = {
    attempt: o.attempt,
    outcome: o.status === "sent" ? "success" : "error",
    provider: o.providerName,
    duration_ms: Math.round(o.durationMs),
  };
  if (o.httpStatus !== undefined) attemptData.http_status = o.httpStatus;
  if (o.providerMessageId) attemptData.provider_message_id = o.providerMessageId;
  if (o.providerStatus) attemptData.provider_status = o.providerStatus;
  if (o.status !== "sent") Object.assign(attemptData, { error_class: o.errorClass, error_code: o.errorCode, error_message: o.errorMessage });
  if (o.notSent) attemptData.provider_called = false;
  events.push({ id: uuidv7(), type: "attempt", data: attemptData });
  events.push({ id: uuidv7(), type: "status_changed", data: { from: "sending", to: o.status, source: "worker" } });
  if (o.status === "retry") {
    events.push({ id: uuidv7(), type: "retry_scheduled", data: { attempt: o.attempt, delay_seconds: Math.round(o.delaySeconds! * 1000) / 1000, due_at: new Date(o.dueAt!).toISOString() } });
  }
  if (o.status === "failed") {
    events.push({ id: uuidv7(), type: "dead_lettered", data: { attempts: o.attempt, error_class: o.errorClass, error_code: o.errorCode } });
  }
  return events;
}

/**
 * Records all outcomes in one statement. The claim's attempt number fences it: a row someone else
 * has since claimed again is left alone. A status a provider callback already moved forward
 * (sent → delivered before we recorded) is kept; the provider message id is still stored.
 */
export async function recordOutcomes(db: Database, outcomes: Outcome[]): Promise<Set<string>> {
  if (outcomes.length === 0) return new Set();
  const input = outcomes.map((o) => ({
    id: o.id,
    attempt: o.attempt,
    status: o.status,
    provider_message_id: o.providerMessageId ?? null,
    error_class: o.status === "sent" ? null : o.errorClass,
    error_code: o.status === "sent" ? null : o.errorCode,
    error_message: o.status === "sent" ? null : o.errorMessage,
    ambiguous: o.ambiguous === true,
    next_attempt_at: o.dueAt ? new Date(o.dueAt).toISOString() : null,
    events: eventsFor(o),
  }));
  const rows = await db.run<Row>(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as x(id uuid, attempt int, status text, provider_message_id text, error_class text, error_code text,
             error_message text, ambiguous boolean, next_attempt_at timestamptz, events jsonb)),
    upd as (
      update messages m set
        status = case when m.status in ('sending', 'retry') then i.status else m.status end,
        provider_message_id = coalesce(i.provider_message_id, m.provider_message_id),
        sent_at = case when i.status = 'sent' then coalesce(m.sent_at, now()) else m.sent_at end,
        error_class = i.error_class, error_code = i.error_code, error_message = i.error_message,
        next_attempt_at = i.next_attempt_at,
        -- sticky until a success: an attempt that may have been accepted is looked up before every resend
        ambiguous_attempt = case when i.status = 'sent' then false else m.ambiguous_attempt or i.ambiguous end,
        updated_at = now()
      from input i
      where m.id = i.id and m.attempts = i.attempt
      returning m.id, m.type, m.status, m.conversation_id),
    ev as (
      insert into message_events (id, message_id, type, data)
      select (e->>'id')::uuid, i.id, e->>'type', e->'data'
        from input i join upd on upd.id = i.id, jsonb_array_elements(i.events) e
       where e->>'type' <> 'status_changed' or upd.status = i.status),
    dl as (
      insert into dead_letters (message_id, type, attempts, error_class, error_code, error_message)
      select i.id, upd.type, i.attempt, i.error_class, i.error_code, i.error_message
        from input i join upd on upd.id = i.id where i.status = 'failed'
      on conflict (message_id) do update set attempts = excluded.attempts, error_class = excluded.error_class,
        error_code = excluded.error_code, error_message = excluded.error_message, dead_lettered_at = now())
    select id from upd`);
  return new Set(rows.map((r) => r.id as string));
}

/** Attempts the claimed messages and records the outcomes; returns what Redis must learn. */
export async function processClaimed(config: Config, db: Database, messages: OutboundMessage[]): Promise<BatchResult> {
  const outcomes = await mapLimited(messages, config.QUEUE_CONCURRENCY, (m) => attempt(config, m));
  const recorded = await recordOutcomes(db, outcomes);
  const result: BatchResult = { outcomes, retries: [], deadLetters: [] };
  for (const o of outcomes) {
    if (!recorded.has(o.id)) {
      log("warn", "outcome_not_recorded", { message_id: o.id, attempt: o.attempt, status: o.status });
      continue;
    }
    if (o.status === "retry") result.retries.push({ type: o.type, member: `${o.id}:${o.attempt}`, dueAt: o.dueAt! });
    if (o.status === "failed") result.deadLetters.push({ id: o.id, type: o.type, errorClass: o.errorClass!, errorCode: o.errorCode! });
  }
  return result;
}

export function logBatchError(error: unknown, context: Record<string, unknown>) {
  log("error", "batch_failed", { ...context, ...errorFields(error) });
}
