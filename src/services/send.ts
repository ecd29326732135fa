// Accepting an outbound message: the answer always matches the record.
//
// - Overload is refused before anything is stored: a bounded number of sends per isolate, above
//   which the answer is 503 with Retry-After.
// - A type whose provider cannot send (no credentials outside development) is refused, stored nothing.
// - One statement files the message into its conversation, inserts it `pending` (or `scheduled`,
//   with a send_at in its window: future, at most SEND_AT_MAX_DAYS ahead) with its first
//   events, writes its send fence and, with an Idempotency-Key, the key pointing at it: the key
//   commits with the message or not at all. Postgres enforces the statement's time limit, so a send
//   that timed out was rolled back, not committed behind the client's back.
// - When the outcome is unknown (no answer: the connection was lost around the commit), the fence
//   decides: inserting it as "abandoned" either wins (the statement never committed and now never
//   will) or conflicts (it committed). Only when even that cannot be asked is the answer a 503 that
//   says the message may have been stored, with its id.
import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import { DatabaseError, DependencyError, AppError, conflict, serviceUnavailable, validationError } from "../errors";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { errorFields, log } from "../log";
import { providerUnavailable } from "../providers";
import type { Channel } from "../validation/address";
import { SEND_AT_MAX_DAYS, type SendInput } from "../validation/messages";
import { webhookUrlProblem } from "../validation/webhook-url";
import { smsSegments } from "../validation/segments";
import { directKey } from "./conversation-keys";
import { getMessage } from "./messages";
import { recordMessage } from "./metrics";
import { toMessage, type Message, type Row } from "./representation";

export type SendSource = "api" | "legacy";

const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;
const textArray = (values: string[]) => sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;
const KEY_LIFETIME = "24 hours";

/** An Idempotency-Key as the send statement stores it: scoped to the caller and the route. */
export interface KeyClaim {
  scope: string;
  key: string;
  /** SHA-256 of the canonical request body: the same key with another body is a 409 */
  fingerprint: string;
}

export type Accepted =
  | { kind: "created"; message: Message }
  /** the key's first request stored this message; `stored` is its answer, when that was kept */
  | { kind: "replay"; message: Message; stored: { status: number; body: string } | null };

let sendsInFlight = 0;

/** Sends this isolate is working on (for tests and the load shedding below). */
export const sendsInFlightNow = () => sendsInFlight;

/** The CTE `conv(id)`: the conversation the new message joins, its counters already bumped. */
function conversationCte(input: SendInput): SQL {
  if (input.parentId) {
    return sql`conv as (
      update conversations c
         set message_count = c.message_count + 1,
             last_message_at = greatest(c.last_message_at, now()),
             status = 'active', updated_at = now()
        from messages p
       where p.id = ${input.parentId} and c.id = p.conversation_id
      returning c.id)`;
  }
  if (input.conversationType === "thread") {
    return sql`conv as (
      insert into conversations (id, participant_from, participant_to, channel_type, type, status, last_message_at, message_count, metadata)
      values (${uuidv7()}, ${input.from}, ${input.to}, ${input.type}, 'thread', 'active', now(), 1, ${json(input.metadata)})
      returning id)`;
  }
  return sql`conv as (
    insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, status, last_message_at, message_count)
    values (${uuidv7()}, ${input.from}, ${input.to}, ${input.type}, 'direct', ${directKey(input.type, input.from, input.to)}, 'active', now(), 1)
    on conflict (direct_key) where type = 'direct' do update
       set message_count = conversations.message_count + 1,
           last_message_at = greatest(conversations.last_message_at, excluded.last_message_at),
           status = 'active', updated_at = now()
    returning id)`;
}

export interface SendOptions {
  source: SendSource;
  /** async mode records `enqueued` in the same statement; sync mode never enqueues */
  enqueue: boolean;
  key?: KeyClaim;
  /** epoch ms by which the request must be answered */
  deadline: number;
  /** the NAME of the API key that sent it, recorded on the `created` event */
  apiKeyName?: string;
}

/** The one statement that stores a send: conversation, message, first events, fence, and the key. */
function storeStatement(id: string, input: SendInput, options: SendOptions): SQL {
  const provider = input.type === "email" ? "sendgrid" : "twilio";
  const segments = input.type === "sms" ? smsSegments(input.body) : null;
  // A scheduled send waits for its time in its shard (src/objects/queue-worker.ts `schedule`), not
  // in the stream; next_attempt_at holds the time, so that the claim refuses it until then.
  const sendAt = input.sendAt == null ? null : new Date(input.sendAt).toISOString();
  const events: { type: string; data: unknown }[] = [
    { type: "created", data: { source: options.source, ...(options.apiKeyName ? { api_key: options.apiKeyName } : {}) } },
  ];
  if (sendAt) events.push({ type: "scheduled", data: { send_at: sendAt } });
  else if (options.enqueue) events.push({ type: "enqueued", data: { queue: input.type, reason: "initial" } });
  const eventRows = sql.join(
    events.map((e) => sql`(${uuidv7()}::uuid, ${e.type}, ${JSON.stringify(e.data)}::jsonb)`),
    sql`, `,
  );
  const key = options.key
    ? sql`, key as (
        insert into idempotency_keys (scope, key, fingerprint, message_id, expires_at)
        select ${options.key.scope}, ${options.key.key}, ${options.key.fingerprint}, id, now() + interval '${sql.raw(KEY_LIFETIME)}' from msg)`
    : sql``;
  return sql`
    with ${conversationCte(input)},
    msg as (
      insert into messages (id, conversation_id, parent_id, provider, direction, status, type, from_address, to_address, body, attachments, metadata, segments,
                            send_at, next_attempt_at, status_callback, email)
      select ${id}, conv.id, ${input.parentId}, ${provider}, 'outbound', ${sendAt ? "scheduled" : "pending"}, ${input.type}, ${input.from}, ${input.to},
             ${input.body}, ${textArray(input.attachments)}, ${json(input.metadata)}, ${segments},
             ${sendAt}::timestamptz, ${sendAt}::timestamptz, ${input.statusCallback ?? null}, ${input.email ? json(input.email) : null}
        from conv
      returning *),
    ev as (
      insert into message_events (id, message_id, type, data)
      select e.id, msg.id, e.type, e.data from msg, (values ${eventRows}) as e(id, type, data)),
    fence as (insert into send_fences (message_id) select id from msg)
    ${key}
    select * from msg`;
}

const remaining = (deadline: number) => deadline - Date.now();

/**
 * Shares of the request's remaining budget: Postgres cancels the store statement after the first,
 * the route stops waiting for its answer after the second, and what is left asks the fence.
 */
const STATEMENT_SHARE = 0.4;
const ANSWER_SHARE = 0.6;
/** How long a send waits for another request holding the same Idempotency-Key. */
const KEY_LOCK_TIMEOUT_MS = 1000;

export const inProgress = () => conflict("A request with this Idempotency-Key is still being processed", { "Retry-After": "1" });

/**
 * Stores a new outbound message, or finds the one its Idempotency-Key already stored. Throws
 * AppErrors that say exactly what was stored: 503 `overloaded` or `provider_not_configured`
 * (nothing), 409 (nothing new), 503 `service_unavailable` (nothing, or, with `details.message_id`,
 * "may have been stored").
 */
export async function acceptSend(deps: Deps, config: Config, input: SendInput, options: SendOptions): Promise<Accepted> {
  const unavailable = providerUnavailable(config, input.type);
  if (unavailable) {
    throw new AppError(503, "provider_not_configured", `${unavailable.provider} cannot send ${input.type}: set ${unavailable.missing.join(" and ")}`, {
      provider: unavailable.provider,
      missing: unavailable.missing,
    });
  }
  if (input.statusCallback) checkStatusCallback(config, input.statusCallback);
  if (sendsInFlight >= config.MAX_SENDS_IN_FLIGHT) {
    // A keyed retry whose first request was stored is answered with that message: one indexed
    // read, and only at capacity (the usual path finds the key in the store statement itself).
    // (A database that cannot answer leaves the refusal as it was: this request stored nothing.)
    const found = options.key
      ? await existingKey(deps, options.key).catch((error: unknown) => {
          if (error instanceof AppError) throw error; // the key with another body: 409
          return null;
        })
      : null;
    if (found) return found;
    throw new AppError(503, "overloaded", "The service is at capacity; this request stored nothing. Retry shortly.", null, { "Retry-After": "1" });
  }
  sendsInFlight++;
  try {
    const outside = sendAtIssue(input.sendAt);
    if (outside) {
      // A retry of a keyed scheduled send after its time has passed is still the same request:
      // it gets the first answer, not a 422 about a time that was in the future when it was sent.
      const found = options.key ? await existingKey(deps, options.key) : null;
      if (found) return found;
      throw validationError([{ path: "body.send_at", message: outside }]);
    }
    return await store(deps, input, options);
  } finally {
    sendsInFlight--;
  }
}

/** Why a send_at cannot be scheduled (in the past, or too far ahead), or null when it can. */
export function sendAtIssue(sendAt: number | null | undefined, now = Date.now()): string | null {
  if (sendAt == null) return null;
  if (sendAt <= now) return "send_at must be in the future";
  if (sendAt > now + SEND_AT_MAX_DAYS * 86_400_000) return `send_at must be at most ${SEND_AT_MAX_DAYS} days ahead`;
  return null;
}

/** A status_callback must be a URL the service may post to, and there must be a secret to sign with. */
function checkStatusCallback(config: Config, url: string) {
  const problem = webhookUrlProblem(config, url);
  if (problem) throw validationError([{ path: "body.status_callback", message: `status_callback: ${problem}` }]);
  if (!config.WEBHOOK_SIGNING_SECRET) {
    throw validationError([{ path: "body.status_callback", message: "status_callback is not available: the service has no WEBHOOK_SIGNING_SECRET" }]);
  }
}

async function store(deps: Deps, input: SendInput, options: SendOptions, tries = 2): Promise<Accepted> {
  const id = uuidv7();
  let rows: Row[];
  try {
    const left = remaining(options.deadline);
    rows = await deps.db().run<Row>(storeStatement(id, input, options), {
      timeoutMs: Math.max(50, Math.floor(left * STATEMENT_SHARE)),
      answerWithinMs: Math.max(100, Math.floor(left * ANSWER_SHARE)),
      lockTimeoutMs: options.key ? KEY_LOCK_TIMEOUT_MS : undefined,
    });
  } catch (error) {
    if (options.key && error instanceof DatabaseError && error.code === "23505" && error.constraint?.startsWith("idempotency_keys")) {
      const found = await existingKey(deps, options.key);
      if (found) return found;
      if (tries > 1) return store(deps, input, options, tries - 1); // an expired key was just taken away
      throw inProgress();
    }
    if (error instanceof DatabaseError && error.code === "55P03") throw inProgress();
    if (error instanceof DependencyError && error.outcomeUnknown) return settleUnknown(deps, id, options.deadline, error);
    throw error;
  }
  const row = rows[0];
  if (!row) throw validationError([{ path: "body.parent_id", message: `Parent message not found: ${input.parentId}` }]);
  const message = toMessage(row);
  recordMessage({ direction: "outbound", type: input.type, provider: message.provider, status: message.status as "pending" | "scheduled" });
  return { kind: "created", message };
}

/**
 * The first request's record for this key: its message (a replay), a 409 for another body, or
 * null when the key had expired (it is removed so that this request can take it).
 */
async function existingKey(deps: Deps, claim: KeyClaim): Promise<Accepted | null> {
  const [row] = await deps.db().run<Row>(sql`
    with expired as (
      delete from idempotency_keys where scope = ${claim.scope} and key = ${claim.key} and expires_at <= now() returning 1)
    select k.fingerprint, k.message_id, k.response_status, k.response_body, (select count(*) from expired) > 0 as expired
      from (select 1) one left join idempotency_keys k on k.scope = ${claim.scope} and k.key = ${claim.key} and k.expires_at > now()`);
  if (!row || row.expired || row.fingerprint == null) return null;
  if (row.fingerprint !== claim.fingerprint) throw conflict("Idempotency-Key was already used with a different request body");
  const message = await getMessage(deps, String(row.message_id));
  const stored = row.response_status == null ? null : { status: Number(row.response_status), body: String(row.response_body) };
  return { kind: "replay", message, stored };
}

/** The answer a client gets when a send's outcome cannot be known. */
export function mayHaveBeenStored(messageId: string): AppError {
  return new AppError(
    503,
    "service_unavailable",
    "The database did not confirm the send; the message may have been stored. Retry with the same Idempotency-Key, or look it up by its id.",
    { message_id: messageId, may_have_been_stored: true },
    { "Retry-After": "1" },
  );
}

async function settleUnknown(deps: Deps, id: string, deadline: number, cause: DependencyError): Promise<Accepted> {
  const budget = remaining(deadline) - 100;
  log("warn", "send_outcome_unknown", { message_id: id, budget_ms: budget, ...errorFields(cause) });
  if (budget < 100) throw mayHaveBeenStored(id);
  let won: Row | undefined;
  try {
    [won] = await deps.db().run<Row>(
      sql`insert into send_fences (message_id, abandoned) values (${id}, true) on conflict (message_id) do nothing returning message_id`,
      { timeoutMs: Math.floor(budget / 2), answerWithinMs: budget },
    );
  } catch (error) {
    log("error", "send_outcome_unresolved", { message_id: id, ...errorFields(error) });
    throw mayHaveBeenStored(id);
  }
  // Our abandoned fence went in: the send never committed, and its statement can no longer commit.
  if (won) throw serviceUnavailable("Database is unavailable");
  try {
    const message = await getMessage(deps, id);
    recordMessage({ direction: "outbound", type: message.type as Channel, provider: message.provider, status: message.status as "pending" | "scheduled" });
    return { kind: "created", message };
  } catch (error) {
    log("error", "send_stored_unreadable", { message_id: id, ...errorFields(error) });
    throw mayHaveBeenStored(id);
  }
}

/** Keeps the first answer of a keyed send for a byte-for-byte replay; best effort, off the response path. */
export async function storeAnswer(deps: Deps, claim: KeyClaim, messageId: string, status: number, body: string): Promise<void> {
  await deps.db().run(sql`update idempotency_keys set response_status = ${status}, response_body = ${body}
    where scope = ${claim.scope} and key = ${claim.key} and message_id = ${messageId} and response_status is null`);
}
