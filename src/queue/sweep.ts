// The sweep, run by the cron trigger every minute: the safety net for a lost doorbell or alarm,
// stream entries a dead worker left pending, a worker that died mid-batch without its journal, a
// send whose Worker died between its commit and its XADD, and the streams' length.
//
// Scale to zero: every minute it asks Redis (one request, a script) whether anything can be wrong;
// it touches Postgres only when Redis says so (a worker was active since the last database pass,
// or entries were reclaimed from a dead consumer) or at the slow safety cadence
// SWEEP_SAFETY_INTERVAL_SECONDS (10 min: 6 Postgres statements in an idle hour), so that Neon can
// suspend. Lost XADDs normally reach their stream through their shard within seconds
// (src/services/delivery.ts); the safety pass covers a Worker that died before handing one over,
// and a scheduled send whose shard never got it (its send_at passed a minute ago, still scheduled).
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { MESSAGE_TYPES } from "../db/schema";
import { uuidv7 } from "../ids";
import { log } from "../log";
import { emitWebhooksSql, ringWebhookWorker } from "../services/outbound-webhooks";
import type { Row } from "../services/representation";
import type { Channel } from "../validation/address";
import { workerName, workerStub } from "./doorbell";
import { CONSUMER_GROUP, HEARTBEAT_KEY, retryKey, streamKey } from "./keys";
import { LuaScript, MOVE_DUE_RETRIES_LUA } from "./lua";
import { redisError, type Redis } from "./redis";
import { enqueueMany } from "./streams";

const SWEEP = new LuaScript(`${MOVE_DUE_RETRIES_LUA}
local group, now, nowIso, leaseMs, safetyMs, force = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6] == "1"
local out = {}
local reclaimed = 0
for t = 1, #KEYS, 2 do
  local stream, retries = KEYS[t], KEYS[t + 1]
  local consumer = string.match(stream, ":(%a+)$") .. ":0"
  -- the group exists from the start, so that stats and trimming have something to read
  local groups = redis.pcall("XINFO", "GROUPS", stream)
  if type(groups) == "table" and groups.err then
    redis.call("XGROUP", "CREATE", stream, group, "0", "MKSTREAM")
    groups = redis.call("XINFO", "GROUPS", stream)
  end
  local lastDelivered, pending, lag = "0-0", 0, -1
  for _, g in ipairs(groups) do
    local info = {}
    for k = 1, #g, 2 do info[g[k]] = g[k + 1] end
    if info["name"] == group then
      lastDelivered, pending = info["last-delivered-id"], info["pending"]
      if info["lag"] then lag = info["lag"] end
    end
  end
  -- due retries back into the stream
  local moved = moveDueRetries(stream, retries, now, nowIso, 1000)
  -- entries idle past the lease (their worker died mid-batch) go to shard 0, which reads its own
  -- pending list first on its next run
  local claimed = 0
  if pending > 0 then
    local res = redis.call("XAUTOCLAIM", stream, group, consumer, leaseMs, "0-0", "COUNT", 1000, "JUSTID")
    claimed = #res[2]
    reclaimed = reclaimed + claimed
  end
  -- trim what every consumer has acknowledged: below the oldest pending entry and the group's
  -- last delivered entry nothing is needed any more
  local floor = lastDelivered
  if pending > 0 then
    local summary = redis.call("XPENDING", stream, group)
    if summary[2] then floor = summary[2] end
  end
  local trimmed = 0
  if floor ~= "0-0" then trimmed = redis.call("XTRIM", stream, "MINID", floor) end
  table.insert(out, { lastDelivered, moved, claimed, pending, trimmed, lag })
end
redis.call("HSET", "${HEARTBEAT_KEY}", "sweep", now)
-- Postgres is needed when a worker was active since the last database pass (its heartbeat is newer),
-- when entries were reclaimed from a dead consumer, at the safety cadence, or when asked.
local marks = redis.call("HMGET", "${HEARTBEAT_KEY}", "database_sweep", "sms", "mms", "email")
local last = tonumber(marks[1]) or 0
local reason = false
if force then reason = "forced"
elseif reclaimed > 0 then reason = "reclaimed"
elseif tonumber(now) - last >= safetyMs then reason = "safety"
else
  for k = 2, 4 do
    if (tonumber(marks[k]) or 0) > last then reason = "activity" end
  end
end
if reason then redis.call("HSET", "${HEARTBEAT_KEY}", "database_sweep", now) end
return { out, reason }
`);

export interface SweepTypeResult {
  type: Channel;
  lastDeliveredMs: number;
  moved: number;
  claimed: number;
  pending: number;
  trimmed: number;
  /** entries not yet delivered to any worker; -1 when Redis cannot tell */
  lag: number;
}

export interface SweepResult {
  types: SweepTypeResult[];
  /** why Postgres was asked this time ("activity", "reclaimed", "safety", "forced"), or null */
  databaseReason: string | null;
  /** the database pass saw a status webhook event due (or wrote one), so the webhook worker was rung */
  webhooksDue: boolean;
  recovered: { id: string; type: Channel; status: string }[];
  expired: { id: string; type: Channel }[];
  reenqueued: { id: string; type: Channel }[];
  woken: string[];
}

/** Clock skew allowance between the Worker, Redis and Postgres when comparing entry ids with rows. */
const SLACK_MS = 30_000;

async function sweepRedis(redis: Redis, config: Config, force: boolean): Promise<{ types: SweepTypeResult[]; databaseReason: string | null }> {
  const now = Date.now();
  const keys = MESSAGE_TYPES.flatMap((type) => [streamKey(type), retryKey(type)]);
  const args = [
    CONSUMER_GROUP,
    String(now),
    new Date(now).toISOString(),
    String(config.QUEUE_LEASE_SECONDS * 1000),
    String(config.SWEEP_SAFETY_INTERVAL_SECONDS * 1000),
    force ? "1" : "0",
  ];
  let raw: [unknown[], string | false | null];
  try {
    raw = (await SWEEP.run(redis, keys, args)) as [unknown[], string | false | null];
  } catch (error) {
    throw redisError(error);
  }
  const types = MESSAGE_TYPES.map((type, i) => {
    const [lastDelivered, moved, claimed, pending, trimmed, lag] = raw[0][i] as [string, number, number, number, number, number];
    return {
      type,
      lastDeliveredMs: Number(String(lastDelivered).split("-")[0]),
      moved: Number(moved),
      claimed: Number(claimed),
      pending: Number(pending),
      trimmed: Number(trimmed),
      lag: Number(lag),
    };
  });
  return { types, databaseReason: typeof raw[1] === "string" ? raw[1] : null };
}

/**
 * One statement: rows stuck in `sending` past the lease get the ambiguous-outcome policy (the
 * worker's death is not the message's fault: the attempt does not count, and the lease is the
 * window reconcile looks in); rows that committed but never reached their stream, and retries whose
 * schedule was lost, are returned for re-enqueueing (and stamped, so the next pass does not add them
 * again at once); messages that waited past MESSAGE_MAX_AGE_SECONDS (a provider paused for a day)
 * fail as `expired`; old send fences and expired idempotency keys are pruned.
 */
async function sweepDatabase(db: Database, config: Config, types: SweepTypeResult[]) {
  // A pending row older than its cutoff cannot be waiting in the stream: either the group has
  // delivered newer entries, or nothing is waiting undelivered at all.
  const cutoffs = JSON.stringify(
    Object.fromEntries(types.map((t) => [t.type, new Date(t.lag === 0 ? Date.now() : Math.max(0, t.lastDeliveredMs - SLACK_MS)).toISOString()])),
  );
  const policy = config.AMBIGUOUS_SEND_POLICY ?? "reconcile";
  const lease = `${config.QUEUE_LEASE_SECONDS} seconds`;
  const maxAge = `${config.MESSAGE_MAX_AGE_SECONDS} seconds`;
  const rows = await db.run<Row>(sql`
    with stuck as (
      select id, attempts, updated_at from messages
       where status = 'sending' and updated_at < now() - ${lease}::interval
       order by updated_at limit 500 for update skip locked),
    recovered as (
      update messages m set
        status = case when ${policy} = 'fail' then 'failed' else 'retry' end,
        attempts = greatest(0, s.attempts - 1),
        error_class = 'timeout', error_code = 'lease_expired',
        error_message = 'The worker stopped before recording this attempt; the provider may have accepted it',
        ambiguous_attempt = true,
        ambiguous_windows = m.ambiguous_windows || jsonb_build_array(jsonb_build_object('attempt', s.attempts, 'started_at', s.updated_at, 'ended_at', now())),
        next_attempt_at = now(), updated_at = now()
        from stuck s where m.id = s.id
      returning m.id, m.type, m.status, m.attempts, to_jsonb(m.*) as row),
    recovered_events as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'status_changed', jsonb_build_object('from', 'sending', 'to', status, 'source', 'worker', 'reason', 'lease_expired')
        from recovered),
    recovered_dead as (
      insert into dead_letters (message_id, type, attempts, error_class, error_code, error_message)
      select id, type, attempts, 'timeout', 'lease_expired', 'The worker stopped before recording this attempt'
        from recovered where status = 'failed'
      on conflict (message_id) do nothing),
    too_old as (
      select id from messages
       where status in ('pending', 'queued', 'retry', 'scheduled') and coalesce(send_at, created_at) < now() - ${maxAge}::interval
       order by created_at limit 500 for update skip locked),
    expired as (
      update messages m set status = 'failed', error_class = coalesce(m.error_class, 'timeout'), error_code = 'expired',
             error_message = ${`Not sent within MESSAGE_MAX_AGE_SECONDS (${config.MESSAGE_MAX_AGE_SECONDS} s) of its creation`},
             next_attempt_at = null, updated_at = now()
        from too_old t where m.id = t.id
      returning m.id, m.type, m.attempts, m.error_class, to_jsonb(m.*) as row),
    -- the API user's message.failed webhooks of the messages this pass failed
    hooks as (${emitWebhooksSql(sql`
      select row as msg, 'message.failed' as event_type from recovered where status = 'failed'
      union all
      select row, 'message.failed' from expired`)}),
    expired_events as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'status_changed', jsonb_build_object('to', 'failed', 'source', 'sweep', 'reason', 'expired') from expired
      union all
      select gen_random_uuid(), id, 'dead_lettered', jsonb_build_object('attempts', attempts, 'error_class', error_class, 'error_code', 'expired') from expired),
    expired_dead as (
      insert into dead_letters (message_id, type, attempts, error_class, error_code, error_message)
      select id, type, attempts, error_class, 'expired', 'Not sent within MESSAGE_MAX_AGE_SECONDS' from expired
      on conflict (message_id) do nothing),
    lost as (
      select id from messages
       where ((status in ('pending', 'queued')
              and created_at < (${cutoffs}::jsonb ->> type)::timestamptz
              and updated_at < now() - interval '60 seconds')
          or (status in ('retry', 'scheduled') and next_attempt_at < now() - interval '60 seconds' and updated_at < now() - interval '60 seconds'))
         and coalesce(send_at, created_at) >= now() - ${maxAge}::interval
       order by created_at limit 500 for update skip locked),
    reenqueued as (
      update messages m set updated_at = now() from lost l where m.id = l.id returning m.id, m.type, m.status),
    reenqueued_events as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'enqueued', jsonb_build_object('queue', type, 'reason',
             case status when 'retry' then 'scheduled_retry' when 'scheduled' then 'scheduled_send' else 'initial' end, 'source', 'sweep')
        from reenqueued),
    -- A late packet of a send can arrive seconds after its client gave up, never days.
    pruned_fences as (
      delete from send_fences where message_id in (select message_id from send_fences where created_at < now() - interval '7 days' limit 1000)),
    pruned_keys as (
      delete from idempotency_keys where (scope, key) in (select scope, key from idempotency_keys where expires_at < now() limit 1000))
    select 'recovered' as kind, id, type, status from recovered
    union all
    select 'expired', id, type, 'failed' from expired
    union all
    select 'reenqueued', id, type, status from reenqueued
    union all
    select 'webhooks', null, null, webhooks::text from hooks
    union all
    -- an event whose doorbell was lost is overdue; the worker's own alarm covers the rest
    select 'webhooks_due', null, null, exists(select 1 from webhook_events where status = 'pending' and next_attempt_at <= now())::text`);
  const webhooks = rows.find((r) => r.kind === "webhooks");
  const due = rows.find((r) => r.kind === "webhooks_due");
  return {
    webhooksDue: Number(webhooks?.status ?? 0) > 0 || due?.status === "true",
    recovered: rows.filter((r) => r.kind === "recovered").map((r) => ({ id: r.id as string, type: r.type as Channel, status: r.status as string })),
    expired: rows.filter((r) => r.kind === "expired").map((r) => ({ id: r.id as string, type: r.type as Channel })),
    reenqueued: rows
      .filter((r) => r.kind === "reenqueued" || (r.kind === "recovered" && r.status === "retry"))
      .map((r) => ({ id: r.id as string, type: r.type as Channel })),
  };
}

export interface SweepOptions {
  /** run the Postgres pass whatever Redis says (tests and tools) */
  forceDatabase?: boolean;
}

export async function runSweep(env: Env, config: Config, redis: Redis, db: Database, options: SweepOptions = {}): Promise<SweepResult> {
  const { types, databaseReason } = await sweepRedis(redis, config, options.forceDatabase === true);
  let found: Awaited<ReturnType<typeof sweepDatabase>> = { webhooksDue: false, recovered: [], expired: [], reenqueued: [] };
  if (databaseReason) {
    try {
      found = await sweepDatabase(db, config, types);
    } catch (error) {
      // The pass did not happen: the next sweep must not think it did.
      await redis.hdel(HEARTBEAT_KEY, "database_sweep").catch(() => undefined);
      throw error;
    }
  }
  const { webhooksDue, recovered, expired, reenqueued } = found;
  // The status webhooks' worker keeps its own alarm; this wakes it when the database pass saw an
  // overdue event (a lost doorbell) or wrote new ones. Ringing it on every pass cost two more
  // Postgres queries per pass (its claim and its next-due read) while all was idle.
  if (webhooksDue) await ringWebhookWorker(env);
  await enqueueMany(redis, reenqueued);
  // Ring every shard of a type that has something to do; a doorbell costs no Redis command.
  const busy = new Set<Channel>([...types.filter((t) => t.moved + t.claimed > 0 || t.lag !== 0).map((t) => t.type), ...reenqueued.map((m) => m.type)]);
  const woken: string[] = [];
  await Promise.all(
    [...busy].flatMap((type) =>
      Array.from({ length: config.SHARDS_PER_TYPE }, (_, shard) => {
        const name = workerName(type, shard);
        woken.push(name);
        return workerStub(env, config, name).wake(true);
      }),
    ),
  );
  const result = { types, databaseReason, webhooksDue, recovered, expired, reenqueued, woken };
  log("info", "sweep", {
    moved: types.reduce((n, t) => n + t.moved, 0),
    claimed: types.reduce((n, t) => n + t.claimed, 0),
    trimmed: types.reduce((n, t) => n + t.trimmed, 0),
    database: databaseReason,
    recovered: recovered.length,
    expired: expired.length,
    reenqueued: reenqueued.length,
    woken: woken.length,
  });
  return result;
}
