// The doorbell: an RPC to the QueueWorker Durable Object that owns a message's shard. It costs no
// Redis command; a worker that is already running just notes that more work may be waiting.
import type { Config } from "../config";
import type { Channel } from "../validation/address";

export function shardFor(messageId: string, shards: number): number {
  let hash = 0;
  for (let i = 0; i < messageId.length; i++) hash = (hash * 31 + messageId.charCodeAt(i)) | 0;
  return Math.abs(hash) % shards;
}

export function workerName(type: Channel, shard: number): string {
  return `${type}:${shard}`;
}

/**
 * A shard's Durable Object, created near the database when QUEUE_LOCATION_HINT says where that is
 * (a hint only counts when the object is first created; every call passes it so the first one does).
 */
export function workerStub(env: Env, config: Config, name: string) {
  return env.QUEUE_WORKER.getByName(name, config.QUEUE_LOCATION_HINT ? { locationHint: config.QUEUE_LOCATION_HINT } : undefined);
}

export function shardStub(env: Env, config: Config, type: Channel, messageId: string) {
  return workerStub(env, config, workerName(type, shardFor(messageId, config.SHARDS_PER_TYPE)));
}

export async function ringDoorbell(env: Env, config: Config, type: Channel, messageId: string, recheck = false): Promise<void> {
  await shardStub(env, config, type, messageId).wake(recheck);
}
