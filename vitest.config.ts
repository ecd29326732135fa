import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { SANDBOX_CREDENTIALS } from "./dev/sandbox/api.ts";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

// wrangler.toml's [assets] directory must exist before the Worker starts: `npm test` builds it
// (pretest); a run started with `npx vitest` builds it here once.
if (!existsSync(new URL("./dist-assets/console/index.html", import.meta.url))) {
  execFileSync("npx", ["tsx", "dev/build-assets.ts"], { stdio: "inherit", cwd: new URL(".", import.meta.url) });
}

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml", environment: "development" },
      miniflare: {
        bindings: {
          UPSTASH_REDIS_REST_URL: inject("redisRestUrl"),
          UPSTASH_REDIS_REST_TOKEN: inject("redisRestToken"),
          NEON_WS_PROXY: inject("neonWsProxy"),
          DATABASE_URL: inject("databaseUrl"),
          PROVIDER_SANDBOX_URL: inject("sandboxUrl"),
          // Bridges with a simulated round trip, for test/bridges/simulated-rtt.test.ts only.
          TEST_RTT_MS: String(inject("rttMs")),
          TEST_RTT_NEON_WS_PROXY: inject("rttNeonWsProxy"),
          TEST_RTT_UPSTASH_REDIS_REST_URL: inject("rttRedisRestUrl"),
          TEST_BLACKHOLE: inject("blackholeUrl"),
          // The real Twilio and SendGrid clients against the provider sandbox: providers are mocked
          // at the HTTP boundary only. API-key auth, so webhooks need no signature unless a test
          // sets TWILIO_AUTH_TOKEN. The sandbox answers the simulator's magic recipients alike.
          PROVIDER_MODE: "live",
          MAX_SENDS_IN_FLIGHT: "1000",
          TWILIO_API_BASE_URL: inject("sandboxUrl"),
          SENDGRID_API_BASE_URL: inject("sandboxUrl"),
          TWILIO_ACCOUNT_SID: SANDBOX_CREDENTIALS.twilioAccountSid,
          TWILIO_API_KEY_SID: SANDBOX_CREDENTIALS.twilioApiKeySid,
          TWILIO_API_KEY_SECRET: SANDBOX_CREDENTIALS.twilioApiKeySecret,
          SENDGRID_API_KEY: SANDBOX_CREDENTIALS.sendgridApiKey,
          PUBLIC_BASE_URL: "http://service.test",
          PROVIDER_TIMEOUT_MS: "1000",
          RATE_LIMIT_REQUESTS: "10000",
          RATE_LIMIT_BURST: "10000",
          // Retries that finish within a test: 3 attempts, backoff base 0.1 s capped at 2 s.
          QUEUE_MAX_ATTEMPTS: "3",
          QUEUE_RETRY_DELAY: "0.1",
          QUEUE_RETRY_MAX_DELAY: "2",
          // A paused provider is probed within seconds: first after 0.2 s, doubling up to 2 s.
          CIRCUIT_PROBE_MIN_MS: "200",
          CIRCUIT_PROBE_MAX_MS: "2000",
          // Status webhooks (test/webhooks/status-webhooks.test.ts): a fixed test secret for
          // status_callback, a 2 s attempt timeout and a retry schedule of seconds, not hours.
          WEBHOOK_SIGNING_SECRET: "whsec_dGVzdC1zaWduaW5nLXNlY3JldC1mb3Itc3RhdHVzLWNhbGxiYWNrcw==",
          WEBHOOK_TIMEOUT_MS: "2000",
          WEBHOOK_RETRY_SCHEDULE: "0.5,1,2",
          // A failed inbound media fetch is tried again after 0.2 s (doubling), not 10 s.
          MEDIA_FETCH_RETRY_DELAY: "0.2",
        },
      },
    })),
  ],
  test: {
    globalSetup: ["./test/node/global-setup.ts"],
    // The test files share one Postgres database and one Redis: run them one after another.
    fileParallelism: false,
    // Ceilings, not budgets: tests wait on conditions, and a busy 2-core CI machine is slow, not wrong.
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
