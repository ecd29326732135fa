// Dependency checks for the probes: Postgres `select 1`, Redis `PING`, each timed and bounded.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Deps } from "../deps";
import { errorFields, log } from "../log";
import { HEARTBEAT_KEY } from "../queue/keys";
import { providerModes } from "../providers";
import { ageSeconds } from "./queue-stats";

export interface Check {
  status: "healthy" | "unhealthy";
  latency_ms: number;
}

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

export function checkDatabase(deps: Deps): Promise<Check> {
  return timed("database", () => deps.db().run(sql`select 1`));
}

/** Reads the sweep's heartbeat: proves Redis answers and tells how long ago the sweep ran. */
export async function checkRedis(deps: Deps): Promise<Check & { sweep_heartbeat_age_seconds?: number | null }> {
  let heartbeat: string | null = null;
  const check = await timed("redis", async () => {
    heartbeat = await deps.redis().hget<string>(HEARTBEAT_KEY, "sweep");
  });
  if (check.status !== "healthy") return check;
  return { ...check, sweep_heartbeat_age_seconds: ageSeconds(heartbeat === null ? null : Number(heartbeat)) };
}

export function providerChecks(config: Config) {
  const modes = providerModes(config);
  return {
    twilio: { status: "healthy" as const, mode: modes.twilio },
    sendgrid: { status: "healthy" as const, mode: modes.sendgrid },
  };
}
