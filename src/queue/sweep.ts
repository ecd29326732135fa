// The sweep (DESIGN.md §4), run by the cron trigger every minute: the safety net for a lost XADD,
// a lost doorbell or alarm, a worker that died mid-batch, and the streams' length. Idle, it costs
// one Redis request (a script) and one Postgres round trip.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { MESSAGE_TYPES } from "../db/schema";
import { uuidv7 } from "../ids";
import { log } from "../log";
import type { Row } from "../services/representation";
import type { Channel } from "../validation/address";
import { workerName, workerStub } from "./doorbell";
import { CONSUMER_GROUP, HEARTBEAT_KEY, retryKey, streamKey } from "./keys";
import { LuaScript, MOVE_DUE_RETRIES_LUA } from "./lua";
import { redisError, type Redis } from "./redis";
import { enqueueMany } from "./streams";

const SWEEP = new LuaScript(`${MOVE_DUE_RETRIES_LUA}
local group, now, nowIso, leaseMs = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
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
return out
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
  recovered: { id: string; type: Channel; status: string }[];
  reenqueued: { id: string; type: Channel }[];
  woken: string[];
}

/** Clock skew allowance between the Worker, Redis and Postgres when comparing entry ids with rows. */
const SLACK_MS = 30_000;

async function sweepRedis(redis: Redis, config: Config): Promise<SweepTypeResult[]> {
  const now = Date.now();
  const keys = MESSAGE_TYPES.flatMap((type) => [streamKey(type), retryKey(type)]);
  const args = [CONSUMER_GROUP, String(now), new Date(now).toISOString(), String(config.QUEUE_LEASE_SECONDS * 1000)];
  let raw: unknown[];
  try {
    raw = (await SWEEP.run(redis, keys, args)) as unknown[];
  } catch (error) {
    throw redisError(error);
  }
  return MESSAGE_TYPES.map((type, i) => {
    const [lastDelivered, moved, claimed, pending, trimmed, lag] = raw[i] as [string, number, number, number, number, number];
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
}

/**
 * One statement: rows stuck in `sending` past the lease get the ambiguous-outcome policy; rows
 * that committed but never reached their stream, and retries whose schedule was lost, are
 * returned for re-enqueueing (and stamped, so the next sweep does not add them again at once).
 */
async function sweepDatabase(db: Database, config: Config, types: SweepTypeResult[]) {
  // A pending row older than its cutoff cannot be waiting in the stream: either the group has
  // delivered newer entries, or nothing is waiting undelivered at all.
  const cutoffs = JSON.stringify(
    Object.fromEntries(types.map((t) => [t.type, new Date(t.lag === 0 ? Date.now() : Math.max(0, t.lastDeliveredMs - SLACK_MS)).toISOString()])),
  );
  const policy = config.AMBIGUOUS_SEND_POLICY ?? "reconcile";
  const lease = `${config.QUEUE_LEASE_SECONDS} seconds`;
  const rows = await db.run<Row>(sql`
    with stuck as (
      select id, attempts from messages
       where status = 'sending' and updated_at < now() - ${lease}::interval
       order by updated_at limit 500 for update skip locked),
    recovered as (
      update messages m set
        status = case when ${policy} = 'fail' or s.attempts >= ${config.QUEUE_MAX_ATTEMPTS} then 'failed' else 'retry' end,
        error_class = 'timeout', error_code = 'lease_expired',
        error_message = 'The worker stopped before recording this attempt; the provider may have accepted it',
        ambiguous_attempt = true, next_attempt_at = now(), updated_at = now()
        from stuck s where m.id = s.id
      returning m.id, m.type, m.status, m.attempts),
    recovered_events as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'status_changed', jsonb_build_object('from', 'sending', 'to', status, 'source', 'worker', 'reason', 'lease_expired')
        from recovered),
    recovered_dead as (
      insert into dead_letters (message_id, type, attempts, error_class, error_code, error_message)
      select id, type, attempts, 'timeout', 'lease_expired', 'The worker stopped before recording this attempt'
        from recovered where status = 'failed'
      on conflict (message_id) do nothing),
    lost as (
      select id from messages
       where (status in ('pending', 'queued')
              and created_at < (${cutoffs}::jsonb ->> type)::timestamptz
              and updated_at < now() - interval '60 seconds')
          or (status = 'retry' and next_attempt_at < now() - interval '60 seconds' and updated_at < now() - interval '60 seconds')
       order by created_at limit 500 for update skip locked),
    reenqueued as (
      update messages m set updated_at = now() from lost l where m.id = l.id returning m.id, m.type, m.status),
    reenqueued_events as (
      insert into message_events (id, message_id, type, data)
      select gen_random_uuid(), id, 'enqueued', jsonb_build_object('queue', type, 'reason', case when status = 'retry' then 'scheduled_retry' else 'initial' end, 'source', 'sweep')
        from reenqueued)
    select 'recovered' as kind, id, type, status from recovered
    union all
    select 'reenqueued', id, type, status from reenqueued`);
  return {
    recovered: rows.filter((r) => r.kind === "recovered").map((r) => ({ id: r.id as string, type: r.type as Channel, status: r.status as string })),
    reenqueued: rows
      .filter((r) => r.kind === "reenqueued" || (r.kind === "recovered" && r.status === "retry"))
      .map((r) => ({ id: r.id as string, type: r.type as Channel })),
  };
}

export async function runSweep(env: Env, config: Config, redis: Redis, db: Database): Promise<SweepResult> {
  const types = await sweepRedis(redis, config);
  const { recovered, reenqueued } = await sweepDatabase(db, config, types);
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
  const result = { types, recovered, reenqueued, woken };
  log("info", "sweep", {
    moved: types.reduce((n, t) => n + t.moved, 0),
    claimed: types.reduce((n, t) => n + t.claimed, 0),
    trimmed: types.reduce((n, t) => n + t.trimmed, 0),
    recovered: recovered.length,
    reenqueued: reenqueued.length,
    woken: woken.length,
  });
  return result;
}
