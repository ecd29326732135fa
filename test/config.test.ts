// Proves config parsing: defaults, coercion, and that bad values are named, not swallowed.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";

const base = { DATABASE_URL: "postgres://u@h:5432/d", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1", UPSTASH_REDIS_REST_TOKEN: "t" };

describe("loadConfig", () => {
  it("applies the documented defaults, production first: no ENVIRONMENT means auth required", () => {
    const config = loadConfig({ ...base });
    expect(config).toMatchObject({
      ENVIRONMENT: "production",
      SYNC_MESSAGE_PROCESSING: false,
      SHARDS_PER_TYPE: 1,
      QUEUE_MAX_ATTEMPTS: 5,
      QUEUE_RETRY_DELAY: 30,
      QUEUE_RETRY_MAX_DELAY: 3600,
      RATE_LIMIT_ENABLED: true,
      RATE_LIMIT_REQUESTS: 600,
      RATE_LIMIT_PERIOD: 60,
      RATE_LIMIT_BURST: 0,
      DEFAULT_PHONE_REGION: "US",
      METRICS_ENABLED: true,
      API_KEYS: [],
      CORS_ORIGINS: ["http://localhost:3000", "http://localhost:8080"],
      authRequired: true,
    });
  });

  it("coerces strings and trims key lists", () => {
    const config = loadConfig({ ...base, SYNC_MESSAGE_PROCESSING: "TRUE", QUEUE_RETRY_DELAY: "0.5", API_KEYS: " k1 , ,k2 " });
    expect(config.SYNC_MESSAGE_PROCESSING).toBe(true);
    expect(config.QUEUE_RETRY_DELAY).toBe(0.5);
    expect(config.API_KEYS).toEqual(["k1", "k2"]);
    expect(config.authRequired).toBe(true);
  });

  it("fails closed outside development even without keys", () => {
    expect(loadConfig({ ...base, ENVIRONMENT: "production" }).authRequired).toBe(true);
  });

  it("names every bad value", () => {
    try {
      loadConfig({ ...base, SHARDS_PER_TYPE: "0", SYNC_MESSAGE_PROCESSING: "maybe", DATABASE_URL: undefined });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as ConfigError).problems.join("\n");
      expect(text).toContain("SHARDS_PER_TYPE");
      expect(text).toContain("SYNC_MESSAGE_PROCESSING");
      expect(text).toContain("DATABASE_URL is required");
    }
  });
});
