// The circuit breakers as the shards publish them: each QueueWorker writes its state to the
// heartbeat hash (field `circuit:{type}:{shard}`) whenever it changes; /ready, the queue stats and
// the metrics read them from there, with the reads they make anyway.
import type { ProviderName } from "../providers/types";
import type { CircuitState } from "../queue/circuit";
import type { Channel } from "../validation/address";

export interface CircuitView {
  state: CircuitState["state"];
  reason: CircuitState["reason"];
  /** when it opened, ISO; null while closed */
  since: string | null;
  next_probe_at: string | null;
  last_error: string | null;
  /** the shards this is worst of, e.g. ["sms:0", "mms:0"] */
  shards: string[];
}

export const PROVIDER_TYPES: Record<ProviderName, readonly Channel[]> = { twilio: ["sms", "mms"], sendgrid: ["email"] };
const SEVERITY: Record<CircuitState["state"], number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The worst circuit among the shards of some message types (a provider's, or one type's), from the
 * heartbeat hash's `circuit:{type}:{shard}` fields.
 */
export function circuitOf(heartbeats: Record<string, string>, types: readonly string[]): CircuitView | null {
  let worst: { shard: string; state: CircuitState } | null = null;
  const shards: string[] = [];
  for (const [field, value] of Object.entries(heartbeats)) {
    const shard = field.startsWith("circuit:") ? field.slice("circuit:".length) : null;
    if (!shard || !types.includes(shard.split(":")[0]!)) continue;
    let state: CircuitState;
    try {
      state = JSON.parse(value) as CircuitState;
    } catch {
      continue;
    }
    shards.push(shard);
    if (!worst || SEVERITY[state.state] > SEVERITY[worst.state.state]) worst = { shard, state };
  }
  if (!worst) return null;
  const s = worst.state;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { state: s.state, reason: s.reason, since: iso(s.openedAt), next_probe_at: iso(s.nextProbeAt), last_error: s.lastError, shards: shards.sort() };
}

/** HGETALL's flat [field, value, ...] reply (or an object) as an object. */
export function flatHash(reply: unknown): Record<string, string> {
  if (reply && typeof reply === "object" && !Array.isArray(reply)) return reply as Record<string, string>;
  const out: Record<string, string> = {};
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

