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

export async function ringDoorbell(env: Env, config: Config, type: Channel, messageId: string, recheck = false): Promise<void> {
  const name = workerName(type, shardFor(messageId, config.SHARDS_PER_TYPE));
  const stub = env.QUEUE_WORKER.getByName(name);
  await stub.wake(recheck);
}
