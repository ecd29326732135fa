// One Redis request per batch for the worker (docs/architecture.md): acknowledge the previous batch (whose
// outcomes are already committed), schedule its retries, dead-letter its failures, move due
// retries into the stream, then read the next batch through the consumer group.
import type { Channel } from "../validation/address";
import { COUNTERS_KEY, CONSUMER_GROUP, DLQ_STREAM, HEARTBEAT_KEY, retryKey, streamKey } from "./keys";
import { LuaScript, MOVE_DUE_RETRIES_LUA } from "./lua";
import { redisError, type Redis } from "./redis";

const WORKER_STEP = new LuaScript(`${MOVE_DUE_RETRIES_LUA}
local stream, retries, dlq, counters, heartbeat = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, count, now, nowIso = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local pendingFirst, beat, moveDue, typ = ARGV[6] == "1", ARGV[7] == "1", ARGV[8] == "1", ARGV[9]
local processed, failed, wantEarliest, circuit = tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12] == "1", ARGV[13]
local i = 14
local nAck = tonumber(ARGV[i]); i = i + 1
if nAck > 0 then redis.call("XACK", stream, group, unpack(ARGV, i, i + nAck - 1)) end
i = i + nAck
local nRetry = tonumber(ARGV[i]); i = i + 1
for j = 1, nRetry do
  redis.call("ZADD", retries, ARGV[i + 1], ARGV[i]); i = i + 2
end
local nDlq = tonumber(ARGV[i]); i = i + 1
for j = 1, nDlq do
  redis.call("XADD", dlq, "MAXLEN", "~", "10000", "*", "data", ARGV[i]); i = i + 1
end
if processed > 0 then redis.call("HINCRBY", counters, typ .. ":processed", processed) end
if failed > 0 then redis.call("HINCRBY", counters, typ .. ":failed", failed) end
if beat then redis.call("HSET", heartbeat, typ, now) end
if circuit ~= "" then redis.call("HSET", heartbeat, "circuit:" .. consumer, circuit) end
local moved = 0
if moveDue then moved = moveDueRetries(stream, retries, now, nowIso, 500) end
local entries, source = {}, ">"
if count > 0 then
  local function read(from)
    local res = redis.pcall("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", stream, from)
    if type(res) == "table" and res.err then
      if string.find(res.err, "NOGROUP", 1, true) then
        redis.call("XGROUP", "CREATE", stream, group, "0", "MKSTREAM")
        res = redis.call("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", stream, from)
      else
        return redis.error_reply(res.err)
      end
    end
    if res and res[1] then return res[1][2] end
    return {}
  end
  if pendingFirst then
    entries = read("0"); source = "0"
  end
  if #entries == 0 then entries = read(">"); source = ">" end
end
local earliest = false
if wantEarliest or nRetry > 0 or moved > 0 then
  earliest = redis.call("ZRANGE", retries, 0, 0, "WITHSCORES")[2] or "none"
end
return { entries, earliest, moved, source }
`);

export interface StreamEntry {
  entryId: string;
  messageId: string | null;
}

export interface StepInput {
  type: Channel;
  consumer: string;
  /** 0: acknowledge and schedule only, read nothing */
  count: number;
  ack: string[];
  retries: { member: string; dueAt: number }[];
  deadLetters: string[];
  processed: number;
  failed: number;
  readPendingFirst: boolean;
  heartbeat: boolean;
  moveDue: boolean;
  /** ask for the earliest scheduled retry even if this step changed nothing about retries */
  wantEarliest: boolean;
  /** the shard's circuit breaker state to publish (JSON), when it changed */
  circuit: string | null;
}

export interface StepResult {
  entries: StreamEntry[];
  /** the earliest scheduled retry (ms), null when none, undefined when this step did not look */
  earliestDue: number | null | undefined;
  moved: number;
  /** "0" when the entries came from this consumer's own pending list (redelivery after a crash) */
  source: "0" | ">";
}

function parseEntries(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((entry) => {
    const [entryId, fields] = entry as [string, unknown[] | null];
    let messageId: string | null = null;
    // A pending entry that was deleted by a trim comes back with nil fields.
    if (Array.isArray(fields)) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i] !== "data") continue;
        try {
          const data = JSON.parse(String(fields[i + 1])) as { message_id?: unknown };
          if (typeof data.message_id === "string") messageId = data.message_id;
        } catch {
          // malformed entry: acked and dropped below
        }
      }
    }
    return { entryId, messageId };
  });
}

/** Only acknowledge and read: a plain two-command pipeline instead of the script. */
function isPlainStep(input: StepInput): boolean {
  return (
    input.count > 0 &&
    input.retries.length === 0 &&
    input.deadLetters.length === 0 &&
    input.processed + input.failed === 0 &&
    !input.readPendingFirst &&
    !input.heartbeat &&
    !input.moveDue &&
    !input.wantEarliest &&
    input.circuit === null
  );
}

async function plainStep(redis: Redis, input: StepInput): Promise<StepResult | null> {
  const stream = streamKey(input.type);
  const pipeline = redis.pipeline();
  if (input.ack.length > 0) pipeline.xack(stream, CONSUMER_GROUP, input.ack);
  pipeline.xreadgroup(CONSUMER_GROUP, input.consumer, stream, ">", { count: input.count });
  const replies = await pipeline.exec({ keepErrors: true });
  const read = replies.at(-1)!;
  if (read.error) {
    if (String(read.error).includes("NOGROUP")) return null; // the script creates the group
    throw new Error(String(read.error));
  }
  if (replies.length > 1 && replies[0]!.error) throw new Error(String(replies[0]!.error));
  const streams = read.result as [string, unknown][] | null;
  return { entries: parseEntries(streams?.[0]?.[1] ?? []), earliestDue: undefined, moved: 0, source: ">" };
}

export async function workerStep(redis: Redis, input: StepInput): Promise<StepResult> {
  if (isPlainStep(input)) {
    try {
      const result = await plainStep(redis, input);
      if (result) return result;
    } catch (error) {
      throw redisError(error);
    }
  }
  const now = Date.now();
  const args = [
    CONSUMER_GROUP,
    input.consumer,
    String(input.count),
    String(now),
    new Date(now).toISOString(),
    input.readPendingFirst ? "1" : "0",
    input.heartbeat ? "1" : "0",
    input.moveDue ? "1" : "0",
    input.type,
    String(input.processed),
    String(input.failed),
    input.wantEarliest ? "1" : "0",
    input.circuit ?? "",
    String(input.ack.length),
    ...input.ack,
    String(input.retries.length),
    ...input.retries.flatMap((r) => [r.member, String(r.dueAt)]),
    String(input.deadLetters.length),
    ...input.deadLetters,
  ];
  const keys = [streamKey(input.type), retryKey(input.type), DLQ_STREAM, COUNTERS_KEY, HEARTBEAT_KEY];
  try {
    const raw = (await WORKER_STEP.run(redis, keys, args)) as [unknown, string | false | null, number, string];
    return {
      entries: parseEntries(raw[0]),
      earliestDue: raw[1] === "none" ? null : raw[1] ? Number(raw[1]) : undefined,
      moved: Number(raw[2] ?? 0),
      source: raw[3] === "0" ? "0" : ">",
    };
  } catch (error) {
    throw redisError(error);
  }
}
