// Per-client, per-route token buckets with @upstash/ratelimit over the same Redis: a sending API
// sees bursts (a batch of sends) over a modest sustained rate, so a client may spend RATE_LIMIT_BURST
// at once and then RATE_LIMIT_REQUESTS per RATE_LIMIT_PERIOD, refilled evenly. One script (one Redis
// request) per request, as the sliding window before it. One limiter per config per isolate; it
// fails open when Redis does not answer.
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis/cloudflare";
import type { Config } from "../config";
import { AppError } from "../errors";
import { log, errorFields } from "../log";
import { recordRateLimitHit } from "../services/metrics";
import { identify } from "./auth";
import type { AppContext } from "./context";

const limiters = new WeakMap<Config, Ratelimit>();

/** The bucket's size: RATE_LIMIT_BURST, or (0) the smaller of 100 and RATE_LIMIT_REQUESTS. */
export const burstOf = (config: Config) => config.RATE_LIMIT_BURST || Math.min(100, config.RATE_LIMIT_REQUESTS);

/** The limiter fails open, and quickly: it must leave the request most of its deadline. */
const limiterTimeout = (config: Config) => Math.min(config.REDIS_TIMEOUT_MS, Math.floor(config.REQUEST_DEADLINE_MS / 5));

function limiterFor(config: Config): Ratelimit {
  let limiter = limiters.get(config);
  if (!limiter) {
    const redis = new Redis({
      url: config.UPSTASH_REDIS_REST_URL,
      token: config.UPSTASH_REDIS_REST_TOKEN,
      retry: false,
      enableTelemetry: false,
    // Explicit pipelines and scripts only: a request count we can reason about, and no shared failure.
    enableAutoPipelining: false,
      signal: () => AbortSignal.timeout(limiterTimeout(config)),
    });
    limiter = new Ratelimit({
      redis,
      limiter: Ratelimit.tokenBucket(config.RATE_LIMIT_REQUESTS, `${config.RATE_LIMIT_PERIOD} s`, burstOf(config)),
      prefix: "ratelimit",
      // Decisions must be service-wide; a per-isolate cache of blocked clients would disagree with Redis.
      ephemeralCache: false,
      timeout: limiterTimeout(config),
      analytics: false,
    });
    limiters.set(config, limiter);
  }
  return limiter;
}

async function clientId(c: AppContext): Promise<string> {
  // Only a configured key identifies a client, by its name (each key has its own window whatever
  // address it comes from); anything else falls back to the address.
  const key = await identify(c);
  if (key) return `key:${key.name}`;
  return `ip:${c.req.header("cf-connecting-ip") ?? "unknown"}`;
}

export async function rateLimit(c: AppContext): Promise<void> {
  const config = c.get("config");
  if (!config.RATE_LIMIT_ENABLED) return;
  const bucket = `${await clientId(c)}:${c.req.method}:${c.get("route")}`;
  let success = true;
  const burst = burstOf(config);
  let remaining = burst;
  let resetSeconds = config.RATE_LIMIT_PERIOD;
  try {
    const result = await limiterFor(config).limit(bucket);
    if (result.reason === "timeout") {
      log("warn", "rate_limiter_unavailable", { request_id: c.get("requestId"), reason: "timeout" });
    } else {
      success = result.success;
      remaining = Math.max(0, result.remaining);
      resetSeconds = Math.max(1, Math.ceil((result.reset - Date.now()) / 1000));
    }
  } catch (error) {
    log("warn", "rate_limiter_unavailable", { request_id: c.get("requestId"), ...errorFields(error) });
  }
  c.header("X-RateLimit-Limit", String(burst));
  c.header("X-RateLimit-Remaining", String(success ? remaining : 0));
  c.header("X-RateLimit-Reset", String(resetSeconds));
  if (!success) {
    recordRateLimitHit(c.get("route"));
    throw new AppError(429, "rate_limited", "Too many requests. Please try again later.", null, { "Retry-After": String(resetSeconds) });
  }
}
