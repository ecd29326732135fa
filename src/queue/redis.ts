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
    // Within a request, a Redis call leaves part of the deadline for what follows its failure
    // (a send hands its message to the shard instead).
    signal: () => AbortSignal.timeout(boundedTimeout(config.REDIS_TIMEOUT_MS, deadline === undefined ? undefined : deadline - config.REQUEST_DEADLINE_MS * 0.3)),
  });
}

export function redisError(error: unknown): DependencyError {
  if (error instanceof DependencyError) return error;
  return new DependencyError("redis", error instanceof Error ? error.message : String(error), error);
}

export { Redis };
