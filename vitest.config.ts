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
          RATE_LIMIT_REQUESTS: "10000",
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
