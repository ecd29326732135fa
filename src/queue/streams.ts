// The work log: one Redis stream per message type (DESIGN.md §1). An entry carries only what the
// worker needs to find the message in Postgres, which stays the truth.
import type { Channel } from "../validation/address";
import { redisError, type Redis } from "./redis";

export const STREAM_PREFIX = "message_queue:";
export const CONSUMER_GROUP = "workers";

export const streamKey = (type: Channel) => `${STREAM_PREFIX}${type}`;

export interface StreamEntryData {
  message_id: string;
  retry_count: number;
  scheduled_at: string;
}

/** XADD one entry; one Redis request. Throws DependencyError("redis") when it fails. */
export async function enqueue(redis: Redis, type: Channel, messageId: string, retryCount = 0): Promise<string> {
  const data: StreamEntryData = { message_id: messageId, retry_count: retryCount, scheduled_at: new Date().toISOString() };
  try {
    return await redis.xadd(streamKey(type), "*", { data: JSON.stringify(data) });
  } catch (error) {
    throw redisError(error);
  }
}
