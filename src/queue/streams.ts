// The work log: one Redis stream per message type (docs/architecture.md). An entry carries only what the
// worker needs to find the message in Postgres, which stays the truth.
import type { Channel } from "../validation/address";
import { DLQ_STREAM, retryKey, streamKey } from "./keys";
import { redisError, type Redis } from "./redis";

export { streamKey };

export interface StreamEntryData {
  message_id: string;
  retry_count: number;
  scheduled_at: string;
}

/** The `data` field of a stream entry. */
export const entryData = (messageId: string, retryCount: number) =>
  JSON.stringify({ message_id: messageId, retry_count: retryCount, scheduled_at: new Date().toISOString() } satisfies StreamEntryData);

/** XADD one entry; one Redis request. Throws DependencyError("redis") when it fails. */
export async function enqueue(redis: Redis, type: Channel, messageId: string, retryCount = 0): Promise<string> {
  try {
    return await redis.xadd(streamKey(type), "*", { data: entryData(messageId, retryCount) });
  } catch (error) {
    throw redisError(error);
  }
}

/** Stream entries for several messages in one pipeline (the shard's owed entries, the sweep's re-enqueues). */
export async function enqueueMany(redis: Redis, messages: { id: string; type: Channel }[]): Promise<void> {
  if (messages.length === 0) return;
  const pipeline = redis.pipeline();
  for (const m of messages) pipeline.xadd(streamKey(m.type), "*", { data: entryData(m.id, 0) });
  try {
    await pipeline.exec();
  } catch (error) {
    throw redisError(error);
  }
}

/**
 * After a retry request or a redrive: its old retry schedule removed and, unless it is about to be
 * attempted inline, back on the stream. One request.
 */
export async function requeue(redis: Redis, type: Channel, messageId: string, staleRetryMember: string | null, addToStream: boolean): Promise<void> {
  if (!staleRetryMember && !addToStream) return;
  const pipeline = redis.pipeline();
  if (staleRetryMember) pipeline.zrem(retryKey(type), staleRetryMember);
  if (addToStream) pipeline.xadd(streamKey(type), "*", { data: entryData(messageId, 0) });
  try {
    await pipeline.exec();
  } catch (error) {
    throw redisError(error);
  }
}

/** Sync mode's follow-ups: a retry for the worker, or the dead-letter stream entry. One request. */
export async function scheduleFollowUps(
  redis: Redis,
  retries: { type: Channel; member: string; dueAt: number }[],
  deadLetters: { id: string; type: Channel; errorClass: string; errorCode: string }[],
): Promise<void> {
  if (retries.length === 0 && deadLetters.length === 0) return;
  const pipeline = redis.pipeline();
  for (const r of retries) pipeline.zadd(retryKey(r.type), { score: r.dueAt, member: r.member });
  for (const d of deadLetters) {
    const data = JSON.stringify({ message_id: d.id, type: d.type, error_class: d.errorClass, error_code: d.errorCode, at: new Date().toISOString() });
    pipeline.xadd(DLQ_STREAM, "*", { data }, { trim: { type: "MAXLEN", threshold: 10000, comparison: "~" } });
  }
  try {
    await pipeline.exec();
  } catch (error) {
    throw redisError(error);
  }
}
