// Reading and changing messages: get, list, events, status PATCH, retry (docs/api.md).
import { sql, type SQL } from "drizzle-orm";
import { AppError, badRequest, notFound, validationError } from "../errors";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { retryMember } from "../queue/keys";
import type { Page } from "../validation/common";
import { METADATA_MAX_BYTES, utf8Length } from "../validation/common";
import { canMove, type MessageStatus } from "./status";
import { emitWebhooksSql, eventForStatus } from "./outbound-webhooks";
import { toEvent, toMessage, type Message, type Row } from "./representation";

export const messageNotFound = () => notFound("Message not found");

export async function getMessage(deps: Deps, id: string): Promise<Message> {
  const [row] = await deps.db().run<Row>(sql`select * from messages where id = ${id}`);
  if (!row) throw messageNotFound();
  return toMessage(row);
}

export interface MessageFilters {
  conversationId?: string;
  parentId?: string;
  status?: string;
  direction?: string;
  type?: string;
  /** epoch ms: created at or after (inclusive) */
  createdAfter?: number;
  /** epoch ms: created before (exclusive) */
  createdBefore?: number;
  /** exact addresses, as stored (messages_to_idx, messages_from_idx) */
  to?: string;
  from?: string;
}

function whereClause(filters: MessageFilters): SQL {
  const parts: SQL[] = [sql`true`];
  if (filters.conversationId) parts.push(sql`conversation_id = ${filters.conversationId}`);
  if (filters.parentId) parts.push(sql`parent_id = ${filters.parentId}`);
  if (filters.status) parts.push(sql`status = ${filters.status}`);
  if (filters.direction) parts.push(sql`direction = ${filters.direction}`);
  if (filters.type) parts.push(sql`type = ${filters.type}`);
  // A range on messages_list_idx (created_at desc, id desc).
  if (filters.createdAfter !== undefined) parts.push(sql`created_at >= ${new Date(filters.createdAfter).toISOString()}::timestamptz`);
  if (filters.createdBefore !== undefined) parts.push(sql`created_at < ${new Date(filters.createdBefore).toISOString()}::timestamptz`);
  if (filters.to) parts.push(sql`to_address = ${filters.to}`);
  if (filters.from) parts.push(sql`from_address = ${filters.from}`);
  return sql.join(parts, sql` and `);
}

/**
 * How far the v1 list counts its matches. Counting every match of a broad filter costs a scan of
 * hundreds of thousands of index entries on every page (bench/list-1m.ts: 290-400 ms at a million
 * rows); past this many the answer says `total_capped` instead.
 */
export const LIST_TOTAL_CAP = 10_000;

/**
 * The page and its total in one round trip. The CTE is used twice, so Postgres would materialize
 * it (every matching row written out before the first 50 are picked); `not materialized` lets the
 * page walk an index and stop, and the count read an index only. `countUpTo`: count at most that
 * many matches (null: all, as the legacy route promises).
 */
export async function listMessages(deps: Deps, filters: MessageFilters, page: Page, countUpTo: number | null = null) {
  const counted =
    countUpTo === null
      ? sql`select count(*)::int as total from filtered`
      : sql`select count(*)::int as total from (select 1 from filtered limit ${countUpTo + 1}) upto`;
  const rows = await deps.db().run<Row>(sql`
    with filtered as not materialized (select * from messages where ${whereClause(filters)})
    select p.*, t.total from (${counted}) t
    left join lateral (select * from filtered order by created_at desc, id desc limit ${page.limit} offset ${page.offset}) p on true`);
  const matches = Number(rows[0]?.total ?? 0);
  const capped = countUpTo !== null && matches > countUpTo;
  const messages = rows.filter((r) => r.id != null).map(toMessage);
  return { messages, total: capped ? countUpTo : matches, total_capped: capped, limit: page.limit, offset: page.offset };
}

export async function listEvents(deps: Deps, messageId: string, page: Page) {
  const rows = await deps.db().run<Row>(sql`
    with m as (select id from messages where id = ${messageId}),
    e as not materialized (select * from message_events where message_id = ${messageId})
    select (select count(*)::int from m) as found, (select count(*)::int from e) as total, p.*
      from (select 1) one
      left join lateral (select * from e order by created_at, id limit ${page.limit} offset ${page.offset}) p on true`);
  if (!rows[0] || Number(rows[0].found) === 0) throw messageNotFound();
  return {
    message_id: messageId,
    events: rows.filter((r) => r.id != null).map(toEvent),
    total: Number(rows[0].total),
    limit: page.limit,
    offset: page.offset,
  };
}

/** Shallow merge: top-level keys replace, null removes (docs/api.md). */
export function mergeMetadata(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

function checkMergedSize(merged: Record<string, unknown>) {
  if (utf8Length(JSON.stringify(merged)) > METADATA_MAX_BYTES) {
    throw validationError([{ path: "body.metadata", message: `Metadata must be at most ${METADATA_MAX_BYTES} bytes` }]);
  }
}

/**
 * PATCH status: compare-and-set on the status read in the same transaction (row locked), so a
 * concurrent worker or callback cannot be overwritten with a backwards move.
 */
export async function changeStatus(deps: Deps, id: string, to: MessageStatus, metadataPatch: Record<string, unknown> | undefined): Promise<Message> {
  return deps.db().transaction(async (tx) => {
    const found = await tx.execute(sql`select * from messages where id = ${id} for update`);
    const row = found.rows[0] as Row | undefined;
    if (!row) throw messageNotFound();
    const from = row.status as MessageStatus;
    if (from !== to && !canMove(from, to)) {
      throw new AppError(409, "invalid_transition", `Cannot change status from ${from} to ${to}`, { from, to });
    }
    const metadata = metadataPatch ? mergeMetadata((row.metadata as Record<string, unknown>) ?? {}, metadataPatch) : (row.metadata as Record<string, unknown>);
    checkMergedSize(metadata);
    const changed = from !== to;
    const updated = await tx.execute(sql`
      update messages set
        status = ${to},
        metadata = ${JSON.stringify(metadata)}::jsonb,
        sent_at = case when ${to} = 'sent' then coalesce(sent_at, now()) else sent_at end,
        delivered_at = case when ${to} = 'delivered' then coalesce(delivered_at, now()) else delivered_at end,
        -- a message moved to retry is due now; the route puts it back on its stream
        next_attempt_at = case when ${to} = 'retry' and ${changed} then now() else next_attempt_at end,
        updated_at = now()
      where id = ${id}
      returning *`);
    if (changed) {
      await tx.execute(sql`insert into message_events (id, message_id, type, data)
        values (${uuidv7()}, ${id}, 'status_changed', ${JSON.stringify({ from, to, source: "api" })}::jsonb)`);
      // the API user's status webhook, in the change's transaction
      const event = row.direction === "outbound" ? eventForStatus(to) : null;
      if (event) await tx.execute(emitWebhooksSql(sql`select to_jsonb(m.*) as msg, ${event}::text as event_type from messages m where m.id = ${id}`));
    }
    return toMessage(updated.rows[0] as Row);
  });
}

export type ResetReason = "retry_request" | "redrive";

/**
 * Back to `pending` from failed/retry (docs/api.md) in one statement: attempts and error cleared,
 * dead letter removed, `retry_requested`/`redriven` and `enqueued` recorded. Returns null when the
 * message exists but is not retryable.
 */
export async function resetForRetry(
  deps: Deps,
  id: string,
  reason: ResetReason,
  enqueue: boolean,
  /** the NAME of the API key that asked, recorded on the event */
  apiKeyName?: string,
): Promise<{ message: Message; staleRetryMember: string | null } | { status: string } | null> {
  const requestEvent = reason === "retry_request" ? "retry_requested" : "redriven";
  const events = [sql`(${uuidv7()}::uuid, ${requestEvent}, ${JSON.stringify(apiKeyName ? { api_key: apiKeyName } : {})}::jsonb)`];
  if (enqueue) events.push(sql`(${uuidv7()}::uuid, 'enqueued', ${JSON.stringify({ queue: null, reason })}::jsonb)`);
  const rows = await deps.db().run<Row>(sql`
    with target as (select id, status, type, attempts from messages where id = ${id}),
    upd as (
      update messages m set status = 'pending', attempts = 0, error_code = null, error_message = null,
             error_class = null, next_attempt_at = null, updated_at = now()
        from target t
       where m.id = t.id and t.status in ('failed', 'retry')
         ${reason === "redrive" ? sql`and exists (select 1 from dead_letters d where d.message_id = t.id)` : sql``}
      returning m.*),
    dl as (delete from dead_letters where message_id in (select id from upd)),
    ev as (
      insert into message_events (id, message_id, type, data)
      select e.id, upd.id, e.type,
             case when e.type = 'enqueued' then jsonb_set(e.data, '{queue}', to_jsonb(upd.type)) else e.data end
        from upd, (values ${sql.join(events, sql`, `)}) as e(id, type, data))
    select t.status as previous_status, t.attempts as previous_attempts, upd.* from target t left join upd on true`);
  const row = rows[0];
  if (!row) return null;
  if (row.id == null) return { status: row.previous_status as string };
  const stale = row.previous_status === "retry" ? retryMember(id, Number(row.previous_attempts)) : null;
  return { message: toMessage(row), staleRetryMember: stale };
}

export function cannotRetry(status: string) {
  return badRequest(`Cannot retry message with status: ${status}`);
}
