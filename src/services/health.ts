// Dependency checks for the probes: Postgres `select 1`, Redis `PING`, each timed and bounded.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Deps } from "../http/context";
import { errorFields, log } from "../log";

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

export function checkRedis(deps: Deps): Promise<Check> {
  return timed("redis", () => deps.redis().ping());
}

export function providerModes(config: Config) {
  const twilioLive = config.PROVIDER_MODE !== "simulator" && Boolean(config.TWILIO_ACCOUNT_SID && (config.TWILIO_AUTH_TOKEN || config.TWILIO_API_KEY_SECRET));
  const sendgridLive = config.PROVIDER_MODE !== "simulator" && Boolean(config.SENDGRID_API_KEY);
  return {
    twilio: { status: "healthy" as const, mode: twilioLive ? "live" : "simulator" },
    sendgrid: { status: "healthy" as const, mode: sendgridLive ? "live" : "simulator" },
  };
}
