// Status webhooks to the API user, per the Standard Webhooks specification
// (https://www.standardwebhooks.com): the outbox rows (`webhook_events`, migration 0006) are written
// by the statement that records a status change; the WebhookWorker Durable Object
// (src/objects/webhook-worker.ts) claims the due ones, POSTs them signed, and records each attempt
// on the message's timeline (`webhook_attempt`). Delivery is at least once and unordered: every
// attempt of one event carries the same `webhook-id`, and `data.sequence` grows per message so that
// a receiver can drop a stale event.
//
// Retries: after a failed attempt n the event waits WEBHOOK_RETRY_SCHEDULE[n-1] seconds (default
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over about 27.6 hours), then it is given up
// (`failed`). Only a 2xx answer counts as delivered; a redirect is a failure.
import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { WEBHOOK_EVENT_TYPES } from "../db/schema";
import type { Deps } from "../deps";
import { AppError, notFound } from "../errors";
import { errorFields, log } from "../log";
import { webhookUrlProblem } from "../validation/webhook-url";
import { iso, toMessage, type Row } from "./representation";

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The Durable Object that delivers: one, by name (deliveries are few next to sends). */
export const WEBHOOK_WORKER_NAME = "webhooks:0";
/** How much of an answer is kept: enough to see what the receiver said, never its payload. */
export const RESPONSE_PREFIX_BYTES = 256;
/** Events claimed per batch, and in flight at once. */
const BATCH_SIZE = 50;
const CONCURRENCY = 10;

// ---------------------------------------------------------------------------------------------
// Emitting: SQL that writes the outbox rows of a status change, for the statement recording it.

/**
 * A SELECT (for a CTE, or a statement of its own in the change's transaction) that writes the
 * outbox rows of one event per row of `source`, which must yield `msg` (to_jsonb of the message row
 * after the change) and `event_type`. Another change (a cancel route, say) uses it as
 * `hooks as (${emitWebhooksSql(sql`select to_jsonb(c.*) as msg, 'message.canceled' as event_type from canceled c`)})`
 * and must reference `hooks` in its final SELECT (an unreferenced SELECT CTE is not run).
 */
export function emitWebhooksSql(source: SQL): SQL {
  return sql`select coalesce(sum(emit_message_webhook(s.msg, s.event_type)), 0)::int as webhooks from (${source}) s`;
}

/**
 * message.canceled (or any event) for a message whose change the caller has just made in `db`'s
 * transaction or statement: one statement of its own. Prefer emitWebhooksSql inside the statement
 * that records the change; a separate statement is only safe inside the same transaction.
 */
export async function emitMessageWebhook(db: Pick<Database, "run">, messageId: string, type: WebhookEventType): Promise<number> {
  const [row] = await db.run<{ webhooks: number }>(
    emitWebhooksSql(sql`select to_jsonb(m.*) as msg, ${type}::text as event_type from messages m where m.id = ${messageId}`),
  );
  return Number(row?.webhooks ?? 0);
}

/** The event type of a status an outbound message moved to, if the API user hears of it. */
export function eventForStatus(status: string): WebhookEventType | null {
  const type = `message.${status}`;
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(type) && type !== "message.received" ? (type as WebhookEventType) : null;
}

// ---------------------------------------------------------------------------------------------
// Signing (Standard Webhooks: v1 = HMAC-SHA256 over `${id}.${timestamp}.${body}`, keyed with the
// base64-decoded part of the `whsec_` secret)

function secretBytes(secret: string): Uint8Array {
  const b64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function toBase64(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  for (const b of view) text += String.fromCharCode(b);
  return btoa(text);
}

/** A new secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return `v1,${toBase64(mac)}`;
}

/** The event's body: the message as the API returns it when the event happened, and its sequence. */
export function eventBody(row: Row): string {
  return JSON.stringify({
    type: row.type,
    timestamp: iso(row.created_at),
    data: { ...toMessage(row.message as Row), sequence: Number(row.sequence) },
  });
}

// ---------------------------------------------------------------------------------------------
// Delivering

interface Claimed {
  row: Row;
  url: string;
  secret: string | null;
  /** why no request is made: the event is given up at once */
  refusal: string | null;
}

export interface AttemptResult {
  id: string;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  response: string | null;
  durationMs: number;
  /** no request was made (endpoint disabled, URL no longer allowed, no secret) */
  skipped: boolean;
}

/**
 * Claims due events: each gets its attempt number and a lease (its due time moved past the
 * attempt's timeout), so that an attempt whose worker died is made again after the lease.
 */
export async function claimDue(db: Database, config: Config, limit = BATCH_SIZE): Promise<Claimed[]> {
  const leaseMs = config.WEBHOOK_TIMEOUT_MS + 30_000;
  const rows = await db.run<Row>(sql`
    with due as (
      select id from webhook_events where status = 'pending' and next_attempt_at <= now()
       order by next_attempt_at limit ${limit} for update skip locked),
    claimed as (
      update webhook_events w set attempts = w.attempts + 1, next_attempt_at = now() + ${`${leaseMs} milliseconds`}::interval
        from due where w.id = due.id
      returning w.*)
    select c.*, e.url as endpoint_url, e.secret as endpoint_secret, e.disabled_at as endpoint_disabled_at
      from claimed c left join webhook_endpoints e on e.id = c.endpoint_id`);
  return rows.map((row) => {
    const url = String(row.endpoint_id ? row.endpoint_url : row.url);
    const secret = row.endpoint_id ? (row.endpoint_secret as string) : (config.WEBHOOK_SIGNING_SECRET ?? null);
    const refusal = row.endpoint_disabled_at
      ? "endpoint_disabled"
      : secret === null
        ? "no_signing_secret: WEBHOOK_SIGNING_SECRET is not set"
        : webhookUrlProblem(config, url)
          ? `url_not_allowed: ${webhookUrlProblem(config, url)}`
          : null;
    return { row, url, secret, refusal };
  });
}

/** The first bytes of an answer, as text; the rest is never read. */
async function prefix(response: Response): Promise<string | null> {
  if (!response.body) return null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < RESPONSE_PREFIX_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(bytes.slice(0, RESPONSE_PREFIX_BYTES)) || null;
}

/** One attempt; never throws. */
export async function attempt(config: Config, claimed: Claimed): Promise<AttemptResult> {
  const id = String(claimed.row.id);
  if (claimed.refusal) return { id, ok: false, statusCode: null, error: claimed.refusal, response: null, durationMs: 0, skipped: true };
  const body = eventBody(claimed.row);
  const timestamp = Math.floor(Date.now() / 1000);
  const started = Date.now();
  const signal = AbortSignal.timeout(config.WEBHOOK_TIMEOUT_MS);
  try {
    const response = await fetch(claimed.url, {
      method: "POST",
      redirect: "manual",
      signal,
      headers: {
        "content-type": "application/json",
        "user-agent": "messaging-service-webhooks/1",
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await sign(claimed.secret!, id, timestamp, body),
      },
      body,
    });
    // The timeout bounds the answer's first bytes too.
    const text = await Promise.race([
      prefix(response),
      new Promise<null>((resolve) => signal.addEventListener("abort", () => resolve(null), { once: true })),
    ]);
    const ok = response.status >= 200 && response.status < 300;
    return { id, ok, statusCode: response.status, error: ok ? null : `HTTP ${response.status}`, response: text, durationMs: Date.now() - started, skipped: false };
  } catch (error) {
    const timedOut = signal.aborted;
    const message = timedOut ? `timeout: no answer within ${config.WEBHOOK_TIMEOUT_MS} ms` : `network_error: ${error instanceof Error ? error.message : String(error)}`;
    return { id, ok: false, statusCode: null, error: message.slice(0, 500), response: null, durationMs: Date.now() - started, skipped: false };
  }
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

/** When attempt `n` (1-based) failed, the wait before the next, or null when it was the last. */
export function retryDelaySeconds(config: Config, n: number): number | null {
  return config.WEBHOOK_RETRY_SCHEDULE[n - 1] ?? null;
}

/**
 * Records a batch of attempts in one statement: the events' state, one `webhook_attempt` per
 * attempt on its message's timeline, and per endpoint its failing streak (cleared by a success;
 * an endpoint failing for WEBHOOK_DISABLE_AFTER_SECONDS is disabled). A row no longer pending
 * (redelivered, say) is left alone.
 */
export async function recordAttempts(db: Database, config: Config, claimed: Claimed[], results: AttemptResult[]): Promise<void> {
  if (results.length === 0) return;
  const now = Date.now();
  const input = results.map((r, i) => {
    const attempts = Number(claimed[i]!.row.attempts);
    const delay = r.ok || r.skipped ? null : retryDelaySeconds(config, attempts);
    return {
      id: r.id,
      ok: r.ok,
      skipped: r.skipped,
      status_code: r.statusCode,
      error: r.error,
      response: r.response,
      duration_ms: Math.round(r.durationMs),
      give_up: !r.ok && delay === null,
      next_attempt_at: delay === null ? null : new Date(now + delay * 1000).toISOString(),
      url: claimed[i]!.url,
    };
  });
  await db.run(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as x(id uuid, ok boolean, skipped boolean, status_code int, error text, response text, duration_ms int, give_up boolean,
             next_attempt_at text, url text)),
    upd as (
      update webhook_events w set
        status = case when i.ok then 'delivered' when i.give_up then 'failed' else 'pending' end,
        next_attempt_at = case when i.ok or i.give_up then null else i.next_attempt_at::timestamptz end,
        delivered_at = case when i.ok then now() else w.delivered_at end,
        last_attempt_at = now(), last_status_code = i.status_code, last_error = i.error, last_response = i.response
        from input i
       where w.id = i.id and w.status = 'pending'
      returning w.id, w.message_id, w.endpoint_id, w.type, w.attempts, w.status),
    ev as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), upd.message_id, 'webhook_attempt',
             jsonb_strip_nulls(jsonb_build_object(
               'webhook_id', upd.id, 'event', upd.type, 'endpoint_id', upd.endpoint_id,
               'url', case when upd.endpoint_id is null then i.url end,
               'attempt', upd.attempts, 'status', i.status_code, 'duration_ms', i.duration_ms,
               'outcome', case when i.ok then 'delivered' when i.skipped then 'skipped' else 'error' end,
               'error', i.error, 'given_up', case when upd.status = 'failed' then true end,
               'next_attempt_at', case when upd.status = 'pending' then i.next_attempt_at end))
        from upd join input i on i.id = upd.id),
    per_endpoint as (
      select upd.endpoint_id, bool_or(i.ok) as any_ok, bool_and(i.skipped) as all_skipped
        from upd join input i on i.id = upd.id where upd.endpoint_id is not null group by upd.endpoint_id),
    endpoints as (
      update webhook_endpoints e set
        failing_since = case when p.any_ok then null else coalesce(e.failing_since, now()) end,
        disabled_at = case when not p.any_ok and e.disabled_at is null and e.failing_since < now() - ${`${config.WEBHOOK_DISABLE_AFTER_SECONDS} seconds`}::interval
                           then now() else e.disabled_at end,
        disabled_reason = case when not p.any_ok and e.disabled_at is null and e.failing_since < now() - ${`${config.WEBHOOK_DISABLE_AFTER_SECONDS} seconds`}::interval
                           then 'failing_since ' || to_char(e.failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ': every attempt failed for ' ||
                                ${config.WEBHOOK_DISABLE_AFTER_SECONDS}::text || ' s'
                           else e.disabled_reason end
        from per_endpoint p
       where e.id = p.endpoint_id and not p.all_skipped
      returning e.id, e.disabled_at)
    select (select count(*) from upd) as recorded, (select count(*) from endpoints) as endpoints`);
  for (const r of results) {
    if (!r.ok) log(r.skipped ? "warn" : "info", "webhook_attempt_failed", { webhook_id: r.id, status: r.statusCode, error: r.error, duration_ms: r.durationMs });
  }
}

/** The earliest due time of a pending event (epoch ms), or null when none is pending. */
export async function nextDue(db: Database): Promise<number | null> {
  const [row] = await db.run<Row>(sql`select min(next_attempt_at) as due from webhook_events where status = 'pending'`);
  return row?.due ? Date.parse(iso(row.due)!) : null;
}

/** One batch: claim, deliver, record. Returns how many events were attempted. */
export async function deliverBatch(db: Database, config: Config): Promise<number> {
  const claimed = await claimDue(db, config);
  if (claimed.length === 0) return 0;
  const results = await mapLimited(claimed, CONCURRENCY, (c) => attempt(config, c));
  await recordAttempts(db, config, claimed, results);
  return claimed.length;
}

/** Wakes the delivering Durable Object (after a commit that may have written outbox rows). */
export async function ringWebhookWorker(env: Env): Promise<void> {
  try {
    await env.WEBHOOK_WORKER.getByName(WEBHOOK_WORKER_NAME).wake();
  } catch (error) {
    // The sweep wakes it within a minute; the outbox row is already committed.
    log("warn", "webhook_doorbell_failed", errorFields(error));
  }
}

// ---------------------------------------------------------------------------------------------
// Reading and redelivering events (the API)

export function toWebhookEvent(row: Row) {
  return {
    id: row.id as string,
    type: row.type as string,
    message_id: row.message_id as string,
    endpoint_id: (row.endpoint_id as string | null) ?? null,
    url: (row.endpoint_id ? (row.endpoint_url as string | null) : (row.url as string | null)) ?? null,
    sequence: Number(row.sequence),
    status: row.status as string,
    attempts: Number(row.attempts),
    next_attempt_at: row.status === "pending" ? iso(row.next_attempt_at) : null,
    last_attempt_at: iso(row.last_attempt_at),
    last_status_code: row.last_status_code == null ? null : Number(row.last_status_code),
    last_error: (row.last_error as string | null) ?? null,
    last_response: (row.last_response as string | null) ?? null,
    delivered_at: iso(row.delivered_at),
    created_at: iso(row.created_at)!,
  };
}

export type WebhookEvent = ReturnType<typeof toWebhookEvent>;

export interface EventFilter {
  message_id?: string;
  endpoint_id?: string;
  status?: string;
  type?: string;
}

export async function listWebhookEvents(deps: Deps, filter: EventFilter, page: { limit: number; offset: number }) {
  const where: SQL[] = [sql`true`];
  if (filter.message_id) where.push(sql`w.message_id = ${filter.message_id}`);
  if (filter.endpoint_id) where.push(sql`w.endpoint_id = ${filter.endpoint_id}`);
  if (filter.status) where.push(sql`w.status = ${filter.status}`);
  if (filter.type) where.push(sql`w.type = ${filter.type}`);
  const rows = await deps.db().run<Row>(sql`
    select w.id, w.type, w.message_id, w.endpoint_id, w.url, w.sequence, w.status, w.attempts, w.next_attempt_at, w.last_attempt_at,
           w.last_status_code, w.last_error, w.last_response, w.delivered_at, w.created_at, e.url as endpoint_url, count(*) over () as total
      from webhook_events w left join webhook_endpoints e on e.id = w.endpoint_id
     where ${sql.join(where, sql` and `)}
     order by w.created_at desc, w.id desc
     limit ${page.limit} offset ${page.offset}`);
  return { events: rows.map(toWebhookEvent), total: rows.length > 0 ? Number(rows[0]!.total) : 0, limit: page.limit, offset: page.offset };
}

/**
 * Sends an event again: due now with a fresh retry schedule, whatever its state (a delivered one
 * is sent once more; the receiver dedupes on webhook-id). 409 for a disabled endpoint.
 */
export async function redeliver(deps: Deps, eventId: string): Promise<WebhookEvent> {
  const [row] = await deps.db().run<Row>(sql`
    with target as (
      select w.id, e.disabled_at from webhook_events w left join webhook_endpoints e on e.id = w.endpoint_id where w.id = ${eventId}),
    upd as (
      update webhook_events w set status = 'pending', attempts = 0, next_attempt_at = now()
        from target t where w.id = t.id and t.disabled_at is null
      returning w.*)
    select coalesce(u.id, t.id) as id, t.disabled_at as endpoint_disabled_at, u.*, (select url from webhook_endpoints where id = u.endpoint_id) as endpoint_url
      from target t left join upd u on u.id = t.id`);
  if (!row) throw notFound("Webhook event not found");
  if (row.endpoint_disabled_at) throw new AppError(409, "endpoint_disabled", "The event's endpoint is disabled; enable it first (PATCH enabled: true)");
  return toWebhookEvent(row);
}
