// Settings that are secrets (set with `wrangler secret put`, or by `npm run dev` / the tests) and
// therefore not in wrangler.toml's [vars], which is what `wrangler types` reads.
declare namespace Cloudflare {
  interface Env {
    DATABASE_URL: string;
    UPSTASH_REDIS_REST_URL: string;
    UPSTASH_REDIS_REST_TOKEN: string;
    NEON_WS_PROXY?: string;
    API_KEYS?: string;
    PUBLIC_BASE_URL?: string;
    PROVIDER_MODE?: string;
    TWILIO_ACCOUNT_SID?: string;
    TWILIO_AUTH_TOKEN?: string;
    TWILIO_API_KEY_SID?: string;
    TWILIO_API_KEY_SECRET?: string;
    TWILIO_MESSAGING_SERVICE_SID?: string;
    TWILIO_API_BASE_URL?: string;
    SENDGRID_API_KEY?: string;
    SENDGRID_API_BASE_URL?: string;
    SENDGRID_WEBHOOK_PUBLIC_KEY?: string;
    SENDGRID_PARSE_PUBLIC_KEY?: string;
    METRICS_TOKEN?: string;
  }
}
