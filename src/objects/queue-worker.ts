// The QueueWorker Durable Object: one per (message type, shard), named `{type}:{shard}`.
// Its alarm loop lands with the worker issue; until then `wake()` is the doorbell that the send
// path rings and that costs nothing.
import { DurableObject } from "cloudflare:workers";

export class QueueWorker extends DurableObject<Env> {
  async wake(): Promise<void> {}
}
