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
  // A plain doorbell names its message, so the shard can work it without reading the stream.
  await shardStub(env, config, type, messageId).wake(recheck, recheck ? undefined : messageId);
}

/** At most one nudge per provider per isolate in this long: the shards need a sign, not every callback. */
const NUDGE_EVERY_MS = 30_000;
const lastNudge = new Map<string, number>();

/**
 * The provider just signed a callback or an inbound message to us, so it is up: every shard of its
 * types whose circuit is open probes at once instead of waiting out its interval. Throttled per
 * isolate; a closed circuit ignores it.
 */
export async function nudgeProvider(env: Env, config: Config, types: readonly Channel[], provider: string): Promise<void> {
  const now = Date.now();
  if (now - (lastNudge.get(provider) ?? 0) < NUDGE_EVERY_MS) return;
  lastNudge.set(provider, now);
  await Promise.all(types.flatMap((type) => Array.from({ length: config.SHARDS_PER_TYPE }, (_, shard) => workerStub(env, config, workerName(type, shard)).providerAlive())));
}
