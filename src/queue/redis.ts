// The Redis client: Upstash REST, one HTTP request per command or pipeline. Every request has a
// timeout and no client-side retry: callers decide (the send path leaves the message to the sweep).
import { Redis } from "@upstash/redis/cloudflare";
import type { Config } from "../config";
import { boundedTimeout } from "../deadline";
import { DependencyError } from "../errors";

export function openRedis(config: Config, deadline?: number): Redis {
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL,
    token: config.UPSTASH_REDIS_REST_TOKEN,
    retry: false,
    enableTelemetry: false,
    // Explicit pipelines and scripts only: a request count we can reason about, and no shared failure.
    enableAutoPipelining: false,
    automaticDeserialization: false,
    signal: () => AbortSignal.timeout(boundedTimeout(config.REDIS_TIMEOUT_MS, deadline)),
  });
}

export function redisError(error: unknown): DependencyError {
  if (error instanceof DependencyError) return error;
  return new DependencyError("redis", error instanceof Error ? error.message : String(error), error);
}

export { Redis };
