// What the operator console charts and groups, computed from the messages Postgres keeps (no
// third-party service). Each read is bounded whatever the table holds: a window of at most a few
// hours, read through an index (messages_list_idx by created_at, messages_failed_idx by updated_at,
// dead_letters_code_idx) and capped at ROW_CAP rows; `truncated` says when the cap was reached.
import { sql } from "drizzle-orm";
import type { Deps } from "../deps";
import { iso, type Row } from "./representation";

/**
 * The most rows one insight reads. Measured on the dev Postgres with 200,000 messages over 4 hours:
 * the timeseries at the cap (50,000 in the hour) takes about 100 ms, the failure groups 2.5 ms.
 */
export const ROW_CAP = 50_000;

export interface TimeseriesPoint {
  minute: string;
  created: number;
  sent: number;
  failed: number;
  inbound: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

/**
 * Per minute over the last `minutes`: outbound messages created, sent and failed (by their
 * creation minute), inbound received, and the creation-to-sent latency of those sent.
 */
export async function timeseries(deps: Deps, minutes: number) {
  const rows = await deps.db().run<Row>(sql`
    with recent as (
      select created_at, sent_at, status, direction from messages
       where created_at >= date_trunc('minute', now()) - make_interval(mins => ${minutes - 1})
       order by created_at desc, id desc
       limit ${ROW_CAP}),
    per_minute as (
      select date_trunc('minute', created_at) as minute,
             count(*) filter (where direction = 'outbound')::int as created,
             count(sent_at) filter (where direction = 'outbound')::int as sent,
             count(*) filter (where direction = 'outbound' and status = 'failed')::int as failed,
             count(*) filter (where direction = 'inbound')::int as inbound,
             percentile_cont(0.5) within group (order by extract(epoch from sent_at - created_at) * 1000)
               filter (where direction = 'outbound' and sent_at is not null) as p50,
             percentile_cont(0.95) within group (order by extract(epoch from sent_at - created_at) * 1000)
               filter (where direction = 'outbound' and sent_at is not null) as p95
        from recent group by 1),
    minutes as (
      select generate_series(date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}), date_trunc('minute', now()), interval '1 minute') as minute)
    select m.minute, coalesce(p.created, 0) as created, coalesce(p.sent, 0) as sent, coalesce(p.failed, 0) as failed,
           coalesce(p.inbound, 0) as inbound, p.p50, p.p95, (select count(*) from recent)::int as read_rows
      from minutes m left join per_minute p on p.minute = m.minute
     order by m.minute`);
  const ms = (v: unknown) => (v === null || v === undefined ? null : Math.max(0, Math.round(Number(v))));
  const points: TimeseriesPoint[] = rows.map((r) => ({
    minute: iso(r.minute)!,
    created: Number(r.created),
    sent: Number(r.sent),
    failed: Number(r.failed),
    inbound: Number(r.inbound),
    latency_p50_ms: ms(r.p50),
    latency_p95_ms: ms(r.p95),
  }));
  return { generated_at: new Date().toISOString(), minutes, points, truncated: Number(rows[0]?.read_rows ?? 0) >= ROW_CAP };
}

/**
 * Failed messages of the last `minutes` grouped by error code (the latest message and class of
 * each), with how many dead letters each code has now; most frequent first.
 */
export async function failuresByCode(deps: Deps, minutes: number) {
  const rows = await deps.db().run<Row>(sql`
    with recent as (
      select coalesce(error_code, '') as code, error_class, error_message, type, updated_at from messages
       where status = 'failed' and updated_at >= now() - make_interval(mins => ${minutes})
       order by updated_at desc
       limit ${ROW_CAP}),
    failed as (
      select code, count(*)::int as failures, max(updated_at) as last_failed_at,
             (array_agg(error_message order by updated_at desc))[1] as message,
             (array_agg(error_class order by updated_at desc))[1] as error_class,
             array_agg(distinct type) as types
        from recent group by code),
    dead as (select coalesce(error_code, '') as code, count(*)::int as dead_letters from dead_letters group by 1)
    select coalesce(f.code, d.code) as code, coalesce(f.failures, 0) as failures, f.last_failed_at, f.message, f.error_class, f.types,
           coalesce(d.dead_letters, 0) as dead_letters, (select count(*) from recent)::int as read_rows
      from failed f full join dead d on d.code = f.code
     order by coalesce(f.failures, 0) desc, coalesce(d.dead_letters, 0) desc, 1
     limit 100`);
  return {
    generated_at: new Date().toISOString(),
    minutes,
    codes: rows.map((r) => ({
      code: String(r.code),
      failures: Number(r.failures),
      dead_letters: Number(r.dead_letters),
      error_class: (r.error_class as string | null) ?? null,
      message: (r.message as string | null) ?? null,
      types: ((r.types as string[] | null) ?? []).slice().sort(),
      last_failed_at: iso(r.last_failed_at),
    })),
    truncated: Number(rows[0]?.read_rows ?? 0) >= ROW_CAP,
  };
}

/** The ids of up to `limit` dead letters with this error code ("" for none), oldest first, and how many there are. */
export async function deadLettersWithCode(deps: Deps, code: string, type: string | undefined, limit: number) {
  const where = sql`${code === "" ? sql`(error_code is null or error_code = '')` : sql`error_code = ${code}`} ${type ? sql`and type = ${type}` : sql``}`;
  const rows = await deps.db().run<Row>(sql`
    select p.message_id, t.total from (select count(*)::int as total from dead_letters where ${where}) t
    left join lateral (select message_id from dead_letters where ${where} order by dead_lettered_at, message_id limit ${limit}) p on true`);
  return { ids: rows.filter((r) => r.message_id != null).map((r) => r.message_id as string), total: Number(rows[0]?.total ?? 0) };
}
