// One attempt for a batch of messages, shared by the QueueWorker and sync mode: claim in Postgres
// with a compare-and-set (only a won claim leads to a provider call), call the provider with bounded
// concurrency, decide each outcome, and record them all in one statement. Redis work (ack, retry
// schedule, dead letters) is returned to the caller, which sends it only after this commit.
//
// What an outcome costs the message: an attempt counts toward QUEUE_MAX_ATTEMPTS only when the
// failure is the message's own. Throttling, refused credentials and a provider-wide outage are ours
// or the provider's (the circuit breaker pauses the shard for them); they wait instead, bounded by
// MESSAGE_MAX_AGE_SECONDS, after which the message fails as `expired`.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { DatabaseError } from "../errors";
import { uuidv7 } from "../ids";
import { errorFields, log } from "../log";
import { providerFor } from "../providers";
import { LOOKUP_MAX_PAGES } from "../providers/twilio";
import { ProviderError, type ErrorClass, type OutboundMessage, type Provider } from "../providers/types";
import { recordMessage, recordProviderError } from "../services/metrics";
import { emitWebhooksSql } from "../services/outbound-webhooks";
import type { Row } from "../services/representation";
import type { Channel } from "../validation/address";
import { emailFieldsOf } from "../validation/email";
import { backoffSeconds } from "./backoff";
import type { Evidence } from "./circuit";
import { attribute } from "./reconcile";

export type OutcomeStatus = "sent" | "retry" | "failed" | "held";

export interface Outcome {
  id: string;
  type: Channel;
  status: OutcomeStatus;
  /** the claim this outcome belongs to (the fence of the outcome statement) */
  claimSeq: number;
  /** the attempt number as claimed */
  attempt: number;
  /** whether this attempt counts toward QUEUE_MAX_ATTEMPTS */
  counted: boolean;
  durationMs: number;
  providerName: string;
  providerMessageId?: string;
  providerStatus?: string;
  httpStatus?: number;
  errorClass?: ErrorClass;
  errorCode?: string;
  errorMessage?: string;
  /** refused before any provider call (opt-out, expired) */
  notSent?: boolean;
  /** the provider may have accepted it despite the error */
  ambiguous?: boolean;
  /** when the ambiguous request was in flight (epoch ms, our clock) */
  window?: { startedAt: number; endedAt: number };
  /** the provider's message was found by reconcile: no new request was made */
  reconciled?: boolean;
  /** for retries: when, in epoch ms */
  dueAt?: number;
  delaySeconds?: number;
  /** what the call said about the provider as a whole, for the circuit breaker */
  evidence: Evidence;
  /**
   * The id of this outcome's attempt event, fixed when the outcome is decided (and journaled with
   * it), so that recording it again after a commit whose answer was lost changes nothing.
   */
  recordId?: string;
}

export interface BatchResult {
  outcomes: Outcome[];
  /** retries to schedule in Redis: member `${id}:${attempt}` scored by due time */
  retries: { type: Channel; member: string; dueAt: number }[];
  /** dead letters to append to message_dlq */
  deadLetters: { id: string; type: Channel; errorClass: string; errorCode: string }[];
  /** outcomes that could not be recorded (logged); their rows stay claimed until lease recovery */
  unrecorded: Outcome[];
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
    claimSeq: Number(row.claim_seq),
    // A scheduled message ages from its send_at: MESSAGE_MAX_AGE_SECONDS bounds how long it may
    // wait to be sent, not how far ahead it was scheduled.
    createdAt: new Date((row.send_at ?? row.created_at) as string).toISOString(),
    ambiguousAttempt: Boolean(row.ambiguous_attempt),
    ambiguousWindows: ((row.ambiguous_windows as { started_at: string; ended_at: string }[] | null) ?? []).map((w) => ({
      startedAt: Date.parse(w.started_at),
      endedAt: Date.parse(w.ended_at),
    })),
    optedOut: Boolean(row.opted_out),
    email: emailFieldsOf(row.email),
    suppressed: row.suppressed == null ? null : { address: String(row.suppressed), reason: String(row.suppressed_reason) },
  };
}

/**
 * Compare-and-set from a claimable status to `sending`, one statement for the batch. Rows another
 * transaction holds are skipped, not waited for. `claim_seq` is bumped and fences the outcome.
 * A `canceled` row is never claimed, whatever stream entry or alarm brought it here; a cancel is
 * itself one conditional update of the row, so a cancel and a claim racing have one winner. A
 * `scheduled` row is claimed only from its send_at (next_attempt_at), less SCHEDULE_CLOCK_SLACK
 * for the shard's clock running ahead of Postgres' (its alarm fires by its own clock).
 */
export async function claim(db: Database, ids: string[]): Promise<OutboundMessage[]> {
  if (ids.length === 0) return [];
  const rows = await db.run<Row>(sql`
    with candidates as (
      select id, status from messages
       where id = any(${`{${ids.join(",")}}`}::uuid[])
         and ((status in ('pending', 'queued', 'retry') and (next_attempt_at is null or next_attempt_at <= now()))
           or (status = 'scheduled' and next_attempt_at <= now() + ${SCHEDULE_CLOCK_SLACK}::interval))
       for update skip locked),
    claimed as (
      update messages m set status = 'sending', attempts = m.attempts + 1, claim_seq = m.claim_seq + 1,
             next_attempt_at = null, updated_at = now()
        from candidates c where m.id = c.id
      returning m.*, c.status as previous_status),
    ev as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'status_changed', jsonb_build_object('from', previous_status, 'to', 'sending', 'source', 'worker')
        from claimed)
    select c.*, (c.type <> 'email' and exists (
             select 1 from opt_outs o where o.sender = c.from_address and o.recipient = c.to_address)) as opted_out,
           s.address as suppressed, s.reason as suppressed_reason
      from claimed c
      left join lateral (
        select s.address, s.reason from email_suppressions s
         where c.type = 'email'
           and s.address = any(array[lower(c.to_address)]
                 || array(select lower(r) from jsonb_array_elements_text(coalesce(c.email->'cc', '[]'::jsonb) || coalesce(c.email->'bcc', '[]'::jsonb)) r))
         limit 1) s on true`);
  for (const row of rows) recordMessage({ direction: "outbound", type: row.type as Channel, provider: String(row.provider), status: "sending" });
  return rows.map(toOutbound);
}

/** How far the shard's clock may run ahead of Postgres' when it hands over a scheduled send. */
export const SCHEDULE_CLOCK_SLACK = "1 second";

function ambiguousPolicy(config: Config): "retry" | "fail" | "reconcile" {
  return config.AMBIGUOUS_SEND_POLICY ?? "reconcile";
}

/** What a provider's answer says about the provider as a whole, for the circuit breaker. */
export function evidenceOf(error: ProviderError | null, messageId: string): Evidence {
  if (!error) return { kind: "alive" };
  const text = `${error.code}: ${error.message}`;
  if (error.opts.notSent) return { kind: "neutral" };
  switch (error.errorClass) {
    case "credentials":
      return { kind: "credentials", error: text };
    case "rate_limited":
      return { kind: "throttled", error: text, retryAfterMs: (error.opts.retryAfter ?? 1) * 1000 };
    case "permanent":
      return { kind: "alive" }; // it answered, about this message
    default:
      // An attachment that cannot be fetched is about the message, not the provider.
      return error.code === "attachment_unavailable" ? { kind: "neutral" } : { kind: "outage", messageId, error: text };
  }
}

interface Attempted {
  message: OutboundMessage;
  provider: Provider;
  startedAt: number;
  endedAt: number;
  result: { providerMessageId: string; providerStatus: string; httpStatus?: number; reconciled?: boolean } | null;
  heldReason?: string;
  error: ProviderError | null;
}

/** The subrequests one alarm invocation may still make (Workers caps them per invocation). */
export class SubrequestBudget {
  private used = 0;
  constructor(readonly limit: number) {}
  spend(n = 1): void {
    this.used += n;
  }
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  get remaining(): number {
    return this.limit - this.used;
  }
}


/** Subrequests one attempt may make: the call, each attachment fetched by us, a reconcile lookup. */
export function attemptCost(message: Pick<OutboundMessage, "type" | "attachments" | "ambiguousAttempt">): number {
  return 1 + (message.type === "email" ? message.attachments.length : 0) + (message.ambiguousAttempt ? LOOKUP_MAX_PAGES : 0);
}

/** The provider call (or the reconcile lookup that spares it); never throws. */
async function call(config: Config, db: Database, message: OutboundMessage, budget?: SubrequestBudget): Promise<Attempted> {
  const provider = providerFor(config, message.type);
  const startedAt = Date.now();
  const done = (result: Attempted["result"], error: ProviderError | null, heldReason?: string): Attempted => ({
    message,
    provider,
    startedAt,
    endedAt: Date.now(),
    result,
    error,
    heldReason,
  });
  try {
    if (startedAt - Date.parse(message.createdAt) > config.MESSAGE_MAX_AGE_SECONDS * 1000) {
      throw new ProviderError("permanent", "expired", `Not sent within MESSAGE_MAX_AGE_SECONDS (${config.MESSAGE_MAX_AGE_SECONDS} s) of its creation`, { notSent: true });
    }
    if (budget && !budget.take(attemptCost(message))) {
      throw new ProviderError("transient", "subrequest_budget", "Deferred to the next worker invocation: this one has used its subrequests", { notSent: true, deferred: true });
    }
    // The recipient texted STOP to this sender: Twilio would refuse it too (21610); do not call it.
    if (message.optedOut) throw new ProviderError("permanent", "21610", "Attempt to send to unsubscribed recipient", { notSent: true });
    // SendGrid reported a recipient as bouncing, spam-reporting or unsubscribed: sending again would
    // hurt the sender's reputation, so it fails at once and for good (DELETE /api/v1/suppressions lifts it).
    if (message.suppressed) {
      throw new ProviderError("permanent", "recipient_suppressed", `${message.suppressed.address} is suppressed (${message.suppressed.reason})`, { notSent: true });
    }
    // An earlier attempt may have reached the provider: ask before sending again, where it can be asked.
    if (message.ambiguousAttempt && ambiguousPolicy(config) === "reconcile" && provider.listCandidates) {
      const found = await attribute(db, config, message, await provider.listCandidates(message, message.ambiguousWindows));
      if (found.kind === "found") return done({ providerMessageId: found.sid, providerStatus: found.status, reconciled: true }, null);
      if (found.kind === "uncertain") return done(null, null, found.reason);
    }
    return done(await provider.send(message), null);
  } catch (error) {
    const failure =
      error instanceof ProviderError ? error : new ProviderError("transient", "network_error", error instanceof Error ? error.message : String(error));
    if (!failure.opts.notSent) recordProviderError(provider.name, failure.code);
    return done(null, failure);
  }
}

/** Whether a provider's events or status callbacks can settle an ambiguous send before we look or resend. */
function awaitsCallbacks(config: Config, provider: Provider): boolean {
  return !provider.listCandidates || (provider.name === "twilio" && Boolean(config.PUBLIC_BASE_URL));
}

/**
 * Decides one outcome. `providerDown`: the circuit was or became open in this batch, so a
 * provider-wide failure is not the message's and does not count; `resumeAt` is when the shard
 * looks at the provider again.
 */
export function decide(config: Config, a: Attempted, providerDown: boolean, resumeAt: number | null): Outcome {
  const { message, provider } = a;
  const base = {
    id: message.id,
    type: message.type,
    claimSeq: message.claimSeq,
    attempt: message.attempt,
    durationMs: a.endedAt - a.startedAt,
    providerName: provider.name,
    evidence: evidenceOf(a.error, message.id),
    recordId: uuidv7(),
  };
  if (a.result) return { ...base, status: "sent", counted: true, ...a.result };
  if (!a.error) {
    // Reconcile could not tell whether an earlier attempt was accepted: neither resend nor call it sent.
    return { ...base, status: "held", counted: false, errorClass: "timeout", errorCode: "attribution_uncertain", errorMessage: a.heldReason ?? "attribution uncertain", notSent: true };
  }
  const failure = a.error;
  const counted =
    failure.errorClass !== "rate_limited" &&
    failure.errorClass !== "credentials" &&
    !failure.opts.deferred &&
    !(providerDown && base.evidence.kind === "outage");
  const common = {
    ...base,
    counted,
    notSent: failure.opts.notSent,
    ambiguous: failure.opts.ambiguous,
    window: failure.opts.ambiguous ? { startedAt: a.startedAt, endedAt: a.endedAt } : undefined,
    httpStatus: failure.opts.httpStatus,
    errorClass: failure.errorClass,
    errorCode: failure.code,
    errorMessage: failure.message,
  };
  const exhausted = counted && message.attempt >= config.QUEUE_MAX_ATTEMPTS;
  if (failure.errorClass === "permanent" || exhausted || (failure.opts.ambiguous === true && ambiguousPolicy(config) === "fail")) {
    return { ...common, status: "failed" };
  }
  const now = Date.now();
  let delaySeconds = failure.opts.deferred
    ? 0
    : counted
    ? backoffSeconds(message.attempt, { baseSeconds: config.QUEUE_RETRY_DELAY, maxSeconds: config.QUEUE_RETRY_MAX_DELAY }, failure.opts.retryAfter)
    : Math.max(failure.opts.retryAfter ?? 0, ((resumeAt ?? now) - now) / 1000, config.QUEUE_RETRY_DELAY * (0.8 + 0.4 * Math.random()));
  // Give the provider's callbacks or events time to settle an ambiguous send before we look or resend.
  if (failure.opts.ambiguous && ambiguousPolicy(config) === "reconcile" && awaitsCallbacks(config, provider)) {
    delaySeconds = Math.max(delaySeconds, config.RECONCILE_WINDOW_SECONDS);
  }
  const dueAt = now + delaySeconds * 1000;
  if (dueAt > Date.parse(message.createdAt) + config.MESSAGE_MAX_AGE_SECONDS * 1000) {
    return {
      ...common,
      status: "failed",
      errorCode: "expired",
      errorMessage: `Not sent within MESSAGE_MAX_AGE_SECONDS (${config.MESSAGE_MAX_AGE_SECONDS} s); last error ${failure.code}: ${failure.message}`,
    };
  }
  return { ...common, status: "retry", delaySeconds, dueAt };
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
    outcome: o.status === "sent" ? "success" : o.status === "held" ? "held" : "error",
    provider: o.providerName,
    duration_ms: Math.round(o.durationMs),
  };
  if (o.httpStatus !== undefined) attemptData.http_status = o.httpStatus;
  if (o.providerMessageId) attemptData.provider_message_id = o.providerMessageId;
  if (o.providerStatus) attemptData.provider_status = o.providerStatus;
  if (o.reconciled) Object.assign(attemptData, { provider_called: false, reconciled: true });
  if (o.status !== "sent") Object.assign(attemptData, { error_class: o.errorClass, error_code: o.errorCode, error_message: o.errorMessage });
  if (o.notSent) attemptData.provider_called = false;
  if (!o.counted) attemptData.counted = false;
  events.push({ id: o.recordId ?? uuidv7(), type: "attempt", data: attemptData });
  events.push({ id: uuidv7(), type: "status_changed", data: { from: "sending", to: o.status, source: "worker" } });
  if (o.status === "retry") {
    events.push({ id: uuidv7(), type: "retry_scheduled", data: { attempt: o.attempt, delay_seconds: Math.round(o.delaySeconds! * 1000) / 1000, due_at: new Date(o.dueAt!).toISOString() } });
  }
  if (o.status === "failed") {
    events.push({ id: uuidv7(), type: "dead_lettered", data: { attempts: o.counted ? o.attempt : o.attempt - 1, error_class: o.errorClass, error_code: o.errorCode } });
  }
  return events;
}

function outcomeInput(o: Outcome) {
  const failedish = o.status !== "sent";
  return {
    id: o.id,
    record_id: o.recordId ?? null,
    claim_seq: o.claimSeq,
    counted: o.counted,
    status: o.status,
    provider_message_id: o.providerMessageId ?? null,
    error_class: failedish ? o.errorClass : null,
    error_code: failedish ? o.errorCode : null,
    error_message: failedish ? o.errorMessage : null,
    ambiguous: o.ambiguous === true,
    window: o.window ? { attempt: o.attempt, started_at: new Date(o.window.startedAt).toISOString(), ended_at: new Date(o.window.endedAt).toISOString() } : null,
    next_attempt_at: o.dueAt ? new Date(o.dueAt).toISOString() : null,
    events: eventsFor(o),
  };
}

/**
 * Records outcomes in one statement. The claim's `claim_seq` fences it: a row someone else has
 * since claimed again is left alone. A status a provider callback already moved forward (sent →
 * delivered before we recorded) is kept. A provider id is never written onto a second message:
 * when another message already holds it, this one keeps none and its timeline says why. An outcome
 * recorded before (the journal replays it after a commit whose answer was lost) is reported
 * recorded and changes nothing.
 */
async function recordStatement(db: Database, outcomes: Outcome[]): Promise<Set<string>> {
  const rows = await db.run<Row>(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(outcomes.map(outcomeInput))}::jsonb)
        as x(id uuid, record_id uuid, claim_seq int, counted boolean, status text, provider_message_id text, error_class text, error_code text,
             error_message text, ambiguous boolean, "window" jsonb, next_attempt_at timestamptz, events jsonb)),
    -- the status before this statement, read under the row lock: a webhook only for a real change
    locked as (
      select m.id, m.status as previous_status from messages m join input i on i.id = m.id for update of m),
    -- recorded before: this outcome's attempt event exists (the commit landed, its answer was lost)
    done as (
      select i.id from input i join message_events e on e.id = i.record_id),
    taken as (
      select i.id from input i
        join messages self on self.id = i.id
        join messages o on o.provider = self.provider and o.provider_message_id = i.provider_message_id and o.id <> i.id),
    upd as (
      update messages m set
        status = case when m.status in ('sending', 'retry') then i.status else m.status end,
        attempts = case when i.counted then m.attempts else greatest(0, m.attempts - 1) end,
        provider_message_id = case when i.id in (select id from taken) then m.provider_message_id
                                   else coalesce(i.provider_message_id, m.provider_message_id) end,
        sent_at = case when i.status = 'sent' then coalesce(m.sent_at, now()) else m.sent_at end,
        error_class = i.error_class, error_code = i.error_code, error_message = i.error_message,
        next_attempt_at = i.next_attempt_at,
        -- sticky until a success: an attempt that may have been accepted is looked up before every resend
        ambiguous_attempt = case when i.status = 'sent' then false else m.ambiguous_attempt or i.ambiguous end,
        ambiguous_windows = case when i."window" is null then m.ambiguous_windows else m.ambiguous_windows || jsonb_build_array(i."window") end,
        updated_at = now()
      from input i join locked l on l.id = i.id
      where m.id = i.id and m.claim_seq = i.claim_seq and i.id not in (select id from done)
        -- canceled is final: a late record of an older claim leaves it alone
        and m.status <> 'canceled'
      returning m.id, m.type, m.status, m.attempts, l.previous_status, to_jsonb(m.*) as row),
    -- the API user's status webhooks (message.sent, message.failed), written with the outcome
    hooks as (${emitWebhooksSql(sql`
      select upd.row as msg, 'message.' || upd.status as event_type
        from upd join input i on i.id = upd.id
       where upd.status = i.status and upd.status in ('sent', 'failed') and upd.previous_status is distinct from upd.status`)}),
    ev as (
      insert into message_events (id, message_id, type, data)
      select (e->>'id')::uuid, i.id, e->>'type', e->'data'
        from input i join upd on upd.id = i.id, jsonb_array_elements(i.events) e
       where e->>'type' not in ('status_changed', 'dead_lettered') or upd.status = i.status
      union all
      select gen_random_uuid(), i.id, 'attempt',
             jsonb_build_object('attribution_conflict', true, 'provider_message_id', i.provider_message_id,
                                'note', 'the provider id is already attributed to another message; not stored on this one')
        from input i join upd on upd.id = i.id where i.id in (select id from taken)),
    dl as (
      -- only a message whose final state is failed is dead-lettered (not one a callback already delivered)
      insert into dead_letters (message_id, type, attempts, error_class, error_code, error_message)
      select i.id, upd.type, upd.attempts, i.error_class, i.error_code, i.error_message
        from input i join upd on upd.id = i.id where i.status = 'failed' and upd.status = 'failed'
      on conflict (message_id) do update set attempts = excluded.attempts, error_class = excluded.error_class,
        error_code = excluded.error_code, error_message = excluded.error_message, dead_lettered_at = now())
    select id, status, (select webhooks from hooks) as webhooks from upd
    union all
    select id, null as status, null as webhooks from done`);
  for (const row of rows) {
    const o = outcomes.find((x) => x.id === row.id);
    // A status a callback had already moved forward is kept: only real changes are counted.
    if (o && o.status === row.status) recordMessage({ direction: "outbound", type: o.type, provider: o.providerName, status: o.status });
  }
  return new Set(rows.map((r) => r.id as string));
}

/**
 * Records every outcome; one message's bad row never holds back the rest of its batch: when the
 * batch statement fails on a constraint, each outcome is recorded on its own and the ones that
 * still fail are reported. A dependency failure (Postgres down) is thrown: nothing was recorded.
 */
export async function recordOutcomes(db: Database, outcomes: Outcome[]): Promise<{ recorded: Set<string>; failed: Outcome[] }> {
  if (outcomes.length === 0) return { recorded: new Set(), failed: [] };
  try {
    return { recorded: await recordStatement(db, outcomes), failed: [] };
  } catch (error) {
    if (!(error instanceof DatabaseError) || outcomes.length === 1) {
      if (error instanceof DatabaseError) {
        log("error", "outcome_not_recorded", { message_id: outcomes[0]!.id, sqlstate: error.code, constraint: error.constraint, ...errorFields(error) });
        return { recorded: new Set(), failed: outcomes };
      }
      throw error;
    }
  }
  const recorded = new Set<string>();
  const failed: Outcome[] = [];
  for (const o of outcomes) {
    const one = await recordOutcomes(db, [o]);
    for (const id of one.recorded) recorded.add(id);
    failed.push(...one.failed);
  }
  return { recorded, failed };
}

/** The provider calls of a batch, at most QUEUE_CONCURRENCY at once. */
export function attemptAll(config: Config, db: Database, messages: OutboundMessage[], budget?: SubrequestBudget): Promise<Attempted[]> {
  return mapLimited(messages, config.QUEUE_CONCURRENCY, (m) => call(config, db, m, budget));
}

export type { Attempted };

/** What Redis must learn about the recorded outcomes. */
export function followUps(outcomes: Outcome[], recorded: Set<string>): Pick<BatchResult, "retries" | "deadLetters"> {
  const retries: BatchResult["retries"] = [];
  const deadLetters: BatchResult["deadLetters"] = [];
  for (const o of outcomes) {
    if (!recorded.has(o.id)) continue;
    if (o.status === "retry") retries.push({ type: o.type, member: `${o.id}:${o.attempt}`, dueAt: o.dueAt! });
    if (o.status === "failed") deadLetters.push({ id: o.id, type: o.type, errorClass: o.errorClass!, errorCode: o.errorCode! });
  }
  return { retries, deadLetters };
}

/**
 * Sync mode and tests: attempt, decide without a circuit breaker (a request has no shard to pause),
 * record, and return what Redis must learn.
 */
export async function processClaimed(config: Config, db: Database, messages: OutboundMessage[]): Promise<BatchResult> {
  const attempted = await attemptAll(config, db, messages);
  const outcomes = attempted.map((a) => decide(config, a, false, null));
  const { recorded, failed } = await recordOutcomes(db, outcomes);
  return { outcomes, ...followUps(outcomes, recorded), unrecorded: failed };
}

/**
 * The outcome of a claim whose provider call was in flight when its worker stopped (killed,
 * evicted): the provider may have accepted it, so it is an ambiguous attempt, recorded at once and
 * settled like any other (callbacks, then reconcile). The worker's stop is not the message's fault.
 */
export function interruptedOutcome(config: Config, type: Channel, claim: { id: string; claimSeq: number; attempt: number }, claimedAt: number): Outcome {
  const now = Date.now();
  const provider = providerFor(config, type);
  const delaySeconds =
    ambiguousPolicy(config) === "reconcile" && awaitsCallbacks(config, provider)
      ? config.RECONCILE_WINDOW_SECONDS
      : backoffSeconds(1, { baseSeconds: config.QUEUE_RETRY_DELAY, maxSeconds: config.QUEUE_RETRY_MAX_DELAY });
  const policyFails = ambiguousPolicy(config) === "fail";
  return {
    id: claim.id,
    type,
    status: policyFails ? "failed" : "retry",
    claimSeq: claim.claimSeq,
    attempt: claim.attempt,
    counted: false,
    durationMs: now - claimedAt,
    providerName: provider.name,
    errorClass: "timeout",
    errorCode: "worker_stopped",
    errorMessage: "The worker stopped while this attempt was in flight; the provider may have accepted it",
    ambiguous: true,
    window: { startedAt: claimedAt, endedAt: now },
    ...(policyFails ? {} : { dueAt: now + delaySeconds * 1000, delaySeconds }),
    evidence: { kind: "neutral" },
    recordId: uuidv7(),
  };
}
