import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          UPSTASH_REDIS_REST_URL: inject("redisRestUrl"),
          UPSTASH_REDIS_REST_TOKEN: inject("redisRestToken"),
          NEON_WS_PROXY: inject("neonWsProxy"),
          DATABASE_URL: inject("databaseUrl"),
          PROVIDER_SANDBOX_URL: inject("sandboxUrl"),
          RATE_LIMIT_REQUESTS: "10000",
          // Retries that finish within a test: 3 attempts, backoff base 0.1 s capped at 2 s.
          QUEUE_MAX_ATTEMPTS: "3",
          QUEUE_RETRY_DELAY: "0.1",
          QUEUE_RETRY_MAX_DELAY: "2",
        },
      },
    })),
  ],
  test: {
    globalSetup: ["./test/node/global-setup.ts"],
    // The test files share one Postgres database and one Redis: run them one after another.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
