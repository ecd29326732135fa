// What the probes report. `/live` and `/health` touch nothing. `/ready` (and `/startup`,
// `/dependencies`) check Postgres (`select 1`) and Redis (one HGETALL of the heartbeat hash, which
// also holds the sweep's heartbeat and every shard's circuit breaker), and cache the result per
// isolate for READY_CACHE_MS, so that a probe every second costs the databases one check every few
// seconds and nothing while idle probes are not running.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import { configurationProblems } from "../config";
import type { Deps } from "../deps";
import { errorFields, log } from "../log";
import { HEARTBEAT_KEY } from "../queue/keys";
import { missingCredentials, providerModes } from "../providers";
import type { ProviderName } from "../providers/types";
import { circuitOf, flatHash, PROVIDER_TYPES, type CircuitView } from "./circuits";
import { ageSeconds } from "./queue-stats";

export interface Check {
  status: "healthy" | "unhealthy";
  latency_ms: number;
}

export interface ProviderCheck {
  /** ok: can send; not_configured: live without credentials (sends refused); paused: its circuit is open */
  status: "ok" | "not_configured" | "paused";
  mode: "live" | "simulator";
  missing: string[];
  circuit: CircuitView | null;
}

export interface Readiness {
  ready: boolean;
  /** what makes it not ready, e.g. "redis unavailable", "sendgrid not configured (SENDGRID_API_KEY)" */
  reasons: string[];
  checks: {
    database: Check;
    redis: Check & { sweep_heartbeat_age_seconds?: number | null };
    providers: Record<ProviderName, ProviderCheck>;
    configuration: { status: "healthy" | "degraded"; problems: string[] };
  };
}

/** How long one isolate reuses a readiness check. */
export const READY_CACHE_MS = 5_000;

async function timed(name: string, work: () => Promise<unknown>): Promise<Check> {
  const started = performance.now();
  try {
    await work();
    return { status: "healthy", latency_ms: Math.round((performance.now() - started) * 100) / 100 };
  } catch (error) {
    log("warn", "health_check_failed", { check: name, ...errorFields(error) });
    return { status: "unhealthy", latency_ms: Math.round((performance.now() - started) * 100) / 100 };
  }
}

async function check(deps: Deps, config: Config): Promise<Readiness> {
  let heartbeats: Record<string, string> = {};
  const [database, redis] = await Promise.all([
    timed("database", () => deps.db().run(sql`select 1`)),
    timed("redis", async () => {
      heartbeats = flatHash(await deps.redis().hgetall(HEARTBEAT_KEY));
    }),
  ]);
  const modes = providerModes(config);
  const providers = Object.fromEntries(
    (["twilio", "sendgrid"] as const).map((name) => {
      const missing = modes[name] === "live" ? missingCredentials(config, name) : [];
      const circuit = redis.status === "healthy" ? circuitOf(heartbeats, PROVIDER_TYPES[name]) : null;
      const status = missing.length > 0 ? "not_configured" : circuit && circuit.state !== "closed" ? "paused" : "ok";
      return [name, { status, mode: modes[name], missing, circuit } satisfies ProviderCheck];
    }),
  ) as Record<ProviderName, ProviderCheck>;
  const problems = configurationProblems(config);
  const reasons = [
    ...(database.status === "healthy" ? [] : ["database unavailable"]),
    ...(redis.status === "healthy" ? [] : ["redis unavailable"]),
    ...Object.entries(providers)
      .filter(([, p]) => p.status === "not_configured")
      .map(([name, p]) => `${name} not configured (${p.missing.join(", ")})`),
  ];
  return {
    ready: reasons.length === 0,
    reasons,
    checks: {
      database,
      redis: redis.status === "healthy" ? { ...redis, sweep_heartbeat_age_seconds: ageSeconds(heartbeats.sweep ? Number(heartbeats.sweep) : null) } : redis,
      providers,
      configuration: { status: problems.length ? "degraded" : "healthy", problems },
    },
  };
}

const cache = new WeakMap<Config, { at: number; value: Promise<Readiness> }>();

/**
 * The readiness checks, reused for READY_CACHE_MS per isolate and configuration. A paused provider
 * (open circuit) does not make the service unready: sends are still accepted and wait in the queue.
 */
export function readiness(deps: Deps, config: Config): Promise<Readiness> {
  const hit = cache.get(config);
  if (hit && Date.now() - hit.at < READY_CACHE_MS) return hit.value;
  const value = check(deps, config);
  cache.set(config, { at: Date.now(), value });
  return value;
}
