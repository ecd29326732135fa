// Queue statistics and dead letters (docs/api.md): one Redis pipeline and one Postgres
// statement per stats call.
import { sql } from "drizzle-orm";
import { MESSAGE_TYPES } from "../db/schema";
import type { Deps } from "../deps";
import { CONSUMER_GROUP, COUNTERS_KEY, HEARTBEAT_KEY, retryKey, streamKey } from "../queue/keys";
import { redisError } from "../queue/redis";
import type { Page } from "../validation/common";
import { circuitOf, flatHash } from "./circuits";
import { iso, type Row } from "./representation";

/** Seconds since an epoch-ms instant, to a tenth; null for never. */
export const ageSeconds = (ms: number | null, now = Date.now()) => (ms === null ? null : Math.max(0, Math.round((now - ms) / 100) / 10));

/** `pending` of our group from XINFO GROUPS' flat [field, value, ...] arrays. */
function groupPending(groups: unknown): number {
  if (!Array.isArray(groups)) return 0;
  for (const group of groups) {
    if (!Array.isArray(group)) continue;
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < group.length; i += 2) info.set(String(group[i]), group[i + 1]);
    if (info.get("name") === CONSUMER_GROUP) return Number(info.get("pending") ?? 0);
  }
  return 0;
}

export async function queueStats(deps: Deps) {
  const pipeline = deps.redis().pipeline();
  for (const type of MESSAGE_TYPES) {
    pipeline.xlen(streamKey(type));
    pipeline.xinfo(streamKey(type), { type: "GROUPS" }); // the group's pending count
    pipeline.xpending(streamKey(type), CONSUMER_GROUP, "-", "+", 1); // the oldest unacknowledged entry
    pipeline.zcard(retryKey(type));
  }
  pipeline.hgetall(COUNTERS_KEY);
  pipeline.hgetall(HEARTBEAT_KEY);
  let replies: unknown[];
  try {
    // Items fail on their own (no group yet): keep them as errors instead of failing the call.
    replies = await pipeline.exec({ keepErrors: true }).then((items) => items.map((item) => (item.error ? null : item.result)));
  } catch (error) {
    throw redisError(error);
  }
  const [dbRows] = await Promise.all([
    deps.db().run<Row>(sql`
      select t.type,
             (select count(*)::int from dead_letters d where d.type = t.type) as dead_letters,
             (select count(*)::int from messages m where m.type = t.type and m.status = 'held') as held,
             (select min(created_at) from messages m where m.type = t.type and m.status = 'pending') as oldest_pending
        from unnest(array['sms', 'mms', 'email']) as t(type)`),
  ]);
  const counters = flatHash(replies[MESSAGE_TYPES.length * 4]);
  const heartbeats = flatHash(replies[MESSAGE_TYPES.length * 4 + 1]);
  const now = Date.now();
  const queues: Record<string, unknown> = {};
  MESSAGE_TYPES.forEach((type, i) => {
    const [length, groups, oldest, retryScheduled] = replies.slice(i * 4, i * 4 + 4);
    const oldestEntry = Array.isArray(oldest) && Array.isArray(oldest[0]) ? (oldest[0] as unknown[]) : null;
    const db = dbRows.find((r) => r.type === type);
    const oldestEntryMs = oldestEntry ? Number(String(oldestEntry[0]).split("-")[0]) : null;
    const oldestPendingMs = db?.oldest_pending ? new Date(db.oldest_pending as string).getTime() : null;
    const candidates = [oldestEntryMs, oldestPendingMs].filter((v): v is number => v !== null);
    const heartbeat = heartbeats[type];
    queues[type] = {
      stream: streamKey(type),
      stream_length: Number(length ?? 0),
      pending: groupPending(groups),
      retry_scheduled: Number(retryScheduled ?? 0),
      dead_letters: Number(db?.dead_letters ?? 0),
      /** messages an ambiguous attempt left unattributable: waiting for a callback or an operator */
      held: Number(db?.held ?? 0),
      oldest_pending_age_seconds: ageSeconds(candidates.length ? Math.min(...candidates) : null, now),
      worker_heartbeat_age_seconds: ageSeconds(heartbeat ? Number(heartbeat) : null, now),
      /** the type's provider circuit as its worst shard sees it: while open, its messages wait */
      circuit: circuitOf(heartbeats, [type]),
      processed_total: Number(counters[`${type}:processed`] ?? 0),
      failed_total: Number(counters[`${type}:failed`] ?? 0),
    };
  });
  return { generated_at: new Date(now).toISOString(), queues, sweep_heartbeat_age_seconds: ageSeconds(heartbeats.sweep ? Number(heartbeats.sweep) : null, now) };
}

export async function listDeadLetters(deps: Deps, type: string | undefined, page: Page) {
  const rows = await deps.db().run<Row>(sql`
    with filtered as (
      select d.*, m.conversation_id from dead_letters d join messages m on m.id = d.message_id
       where ${type ? sql`d.type = ${type}` : sql`true`})
    select p.*, t.total from (select count(*)::int as total from filtered) t
    left join lateral (select * from filtered order by dead_lettered_at desc, message_id limit ${page.limit} offset ${page.offset}) p on true`);
  return {
    dead_letters: rows
      .filter((r) => r.message_id != null)
      .map((r) => ({
        message_id: r.message_id as string,
        conversation_id: r.conversation_id as string,
        type: r.type as string,
        attempts: Number(r.attempts),
        error_class: r.error_class as string,
        error: { code: String(r.error_code ?? ""), message: String(r.error_message ?? "") },
        dead_lettered_at: iso(r.dead_lettered_at)!,
      })),
    total: Number(rows[0]?.total ?? 0),
    limit: page.limit,
    offset: page.offset,
  };
}
