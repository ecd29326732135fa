// Every setting, parsed once per env object with zod. A bad value is a ConfigError that the entry
// point turns into a logged reason and a 500 for every request, never a crash inside a handler.
import { z } from "zod";
import { entryProblem } from "./http/scopes";

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return fallback;
      const v = value.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      ctx.addIssue({ code: "custom", message: `expected true or false, got "${value}"` });
      return z.NEVER;
    });

const num = (fallback: number, opts: { min?: number; max?: number; int?: boolean } = {}) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return fallback;
      const n = Number(value);
      const bad =
        !Number.isFinite(n) ||
        (opts.int && !Number.isInteger(n)) ||
        (opts.min !== undefined && n < opts.min) ||
        (opts.max !== undefined && n > opts.max);
      if (bad) {
        const range = `${opts.min ?? "-inf"}..${opts.max ?? "inf"}`;
        ctx.addIssue({ code: "custom", message: `expected ${opts.int ? "an integer" : "a number"} in ${range}, got "${value}"` });
        return z.NEVER;
      }
      return n;
    });

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

const list = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v) =>
      (v ?? fallback)
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );

const url = (what: string) =>
  z
    .string({ error: `${what} is required` })
    .trim()
    .refine((v) => URL.canParse(v), { message: `${what} must be a URL` });

/** `whsec_` + base64 of at least 24 bytes (the Standard Webhooks secret format). */
export function isWebhookSecret(value: string): boolean {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!match) return false;
  try {
    return atob(match[1]!).length >= 24;
  } catch {
    return false;
  }
}

export const ConfigSchema = z.object({
  ENVIRONMENT: z.string().trim().min(1).optional().default("production"),
  SYNC_MESSAGE_PROCESSING: bool(false),

  DATABASE_URL: url("DATABASE_URL"),
  /** Development only: host:port/path of the Neon WebSocket proxy (dev/neon-proxy.ts). */
  NEON_WS_PROXY: optionalString,
  UPSTASH_REDIS_REST_URL: url("UPSTASH_REDIS_REST_URL"),
  UPSTASH_REDIS_REST_TOKEN: z.string({ error: "UPSTASH_REDIS_REST_TOKEN is required" }).trim().min(1, "UPSTASH_REDIS_REST_TOKEN is required"),
  DB_TIMEOUT_MS: num(5000, { min: 100, max: 60000, int: true }),
  /** how one-shot statements reach Postgres: Neon's HTTP endpoint, or the WebSocket pool (for comparison) */
  DATABASE_TRANSPORT: z.enum(["http", "websocket"]).optional().default("http"),
  REDIS_TIMEOUT_MS: num(3000, { min: 100, max: 60000, int: true }),

  SHARDS_PER_TYPE: num(1, { min: 1, max: 64, int: true }),
  QUEUE_BATCH_SIZE: num(100, { min: 1, max: 500, int: true }),
  QUEUE_CONCURRENCY: num(6, { min: 1, max: 50, int: true }),
  QUEUE_MAX_ATTEMPTS: num(5, { min: 1, max: 50, int: true }),
  QUEUE_RETRY_DELAY: num(30, { min: 0.001, max: 86400 }),
  QUEUE_RETRY_MAX_DELAY: num(3600, { min: 0.001, max: 604800 }),
  /** a stream entry or a `sending` row untouched this long is presumed abandoned by a dead worker */
  QUEUE_LEASE_SECONDS: num(300, { min: 5, max: 86400, int: true }),
  /**
   * while idle, the sweep asks Postgres at most this often (it always does after activity); as low
   * as 10 so that bench/budgets.ts can play an idle hour compressed (60 crons 1 s apart, 10 s cadence)
   */
  SWEEP_SAFETY_INTERVAL_SECONDS: num(600, { min: 10, max: 86400, int: true }),
  /**
   * A shard works the messages its doorbells name at once, without reading the stream; it reads the
   * stream (acknowledging those entries, finding any whose doorbell was lost) at most this often
   * while busy. 0 reads after every doorbell.
   */
  QUEUE_CATCH_UP_MS: num(10000, { min: 0, max: 60000, int: true }),
  /** how long one alarm run may work before it hands over to the next alarm */
  QUEUE_TIME_BUDGET_MS: num(25000, { min: 1000, max: 600000, int: true }),
  /** what to do when a provider call may or may not have been accepted (timeout after sending) */
  AMBIGUOUS_SEND_POLICY: z.enum(["retry", "fail", "reconcile"]).optional(),
  /**
   * reconcile with a provider that cannot be asked (SendGrid): an ambiguous attempt is retried no
   * sooner than this, so that the provider's events can settle it first
   */
  RECONCILE_WINDOW_SECONDS: num(300, { min: 0, max: 86400 }),
  /** how far our clock and the provider's may disagree when a provider message is matched to an attempt's window */
  RECONCILE_CLOCK_SKEW_MS: num(2000, { min: 0, max: 600000, int: true }),
  /** a message not sent this long after its creation fails as `expired` (throttling and outages wait until then) */
  MESSAGE_MAX_AGE_SECONDS: num(86400, { min: 60, max: 30 * 86400, int: true }),
  /** distinct messages failing with 5xx/timeouts in a row that open a provider's circuit */
  CIRCUIT_FAILURE_THRESHOLD: num(5, { min: 1, max: 1000, int: true }),
  /** the first wait before a probe of an open circuit; doubles after each failed probe up to the maximum */
  CIRCUIT_PROBE_MIN_MS: num(2000, { min: 100, max: 3_600_000, int: true }),
  CIRCUIT_PROBE_MAX_MS: num(60000, { min: 100, max: 3_600_000, int: true }),
  /** every request is answered within this budget; a send's database statement gets a share of it */
  REQUEST_DEADLINE_MS: num(5000, { min: 500, max: 60000, int: true }),
  /** sends one isolate works on at once; above it a send is refused (503) before anything is stored */
  MAX_SENDS_IN_FLIGHT: num(32, { min: 1, max: 10000, int: true }),
  /** subrequests one QueueWorker alarm invocation may make (Workers Free: 50, Paid: 1000); batches are sized to fit */
  SUBREQUEST_BUDGET: num(1000, { min: 20, max: 10000, int: true }),
  /** where the QueueWorker Durable Objects are created: near the database (a Durable Object location hint) */
  QUEUE_LOCATION_HINT: z.enum(["wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me"]).optional(),

  /**
   * comma-separated: a raw key (no colon) has every scope (admin); `NAME:SCOPES:SHA256HEX` is a
   * scoped key stored as its digest (npm run keys -- create). Names must be unique.
   */
  API_KEYS: list("").superRefine((entries, ctx) => {
    const names = new Set<string>();
    for (const entry of entries) {
      const problem = entryProblem(entry);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
      const name = entry.includes(":") ? entry.split(":")[0]! : undefined;
      if (name !== undefined && names.has(name)) ctx.addIssue({ code: "custom", message: `API key name ${name} is used twice` });
      if (name !== undefined) names.add(name);
    }
  }),
  PUBLIC_BASE_URL: optionalString.refine((v) => v === undefined || URL.canParse(v), { message: "PUBLIC_BASE_URL must be a URL" }),
  DEFAULT_PHONE_REGION: z.string().trim().toUpperCase().regex(/^[A-Z]{2}$/, "DEFAULT_PHONE_REGION must be a two-letter region code").optional().default("US"),
  CORS_ORIGINS: list("http://localhost:3000,http://localhost:8080"),
  METRICS_ENABLED: bool(true),
  /** when set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` */
  METRICS_TOKEN: optionalString,

  RATE_LIMIT_ENABLED: bool(true),
  /**
   * A token bucket per client (API key, else IP) and route: RATE_LIMIT_REQUESTS per
   * RATE_LIMIT_PERIOD seconds sustained (10/s by default, refilled evenly), up to RATE_LIMIT_BURST
   * at once (0 = the smaller of 100 and RATE_LIMIT_REQUESTS). One Redis request per limited request.
   */
  RATE_LIMIT_REQUESTS: num(600, { min: 1, max: 1_000_000, int: true }),
  RATE_LIMIT_PERIOD: num(60, { min: 1, max: 86400, int: true }),
  RATE_LIMIT_BURST: num(0, { min: 0, max: 1_000_000, int: true }),

  PROVIDER_MODE: z.enum(["live", "simulator"]).optional(),
  PROVIDER_TIMEOUT_MS: num(10000, { min: 100, max: 120000, int: true }),
  TWILIO_ACCOUNT_SID: optionalString,
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_API_KEY_SID: optionalString,
  TWILIO_API_KEY_SECRET: optionalString,
  TWILIO_MESSAGING_SERVICE_SID: optionalString,
  TWILIO_API_BASE_URL: optionalString.transform((v) => v ?? "https://api.twilio.com"),
  SENDGRID_API_KEY: optionalString,
  SENDGRID_API_BASE_URL: optionalString.transform((v) => v ?? "https://api.sendgrid.com"),
  /** subject of an email whose metadata.subject is not a string */
  SENDGRID_DEFAULT_SUBJECT: optionalString.transform((v) => v ?? "New message"),
  /** total attachment bytes fetched for one email; above it the send fails permanently (SendGrid's own cap is 30 MB per mail) */
  SENDGRID_MAX_ATTACHMENT_BYTES: num(10 * 1024 * 1024, { min: 0, max: 30 * 1024 * 1024, int: true }),
  /**
   * attachment bytes held at once across the isolate (downloaded bytes + their base64), well under
   * the 128 MB isolate limit; a send that does not fit waits its turn (src/providers/byte-budget.ts)
   */
  ATTACHMENT_BYTES_IN_FLIGHT: num(32 * 1024 * 1024, { min: 1024 * 1024, max: 96 * 1024 * 1024, int: true }),
  SENDGRID_WEBHOOK_PUBLIC_KEY: optionalString,
  SENDGRID_PARSE_PUBLIC_KEY: optionalString,
  // Status webhooks to the API user (src/services/outbound-webhooks.ts)
  /** signs every message's status_callback (`whsec_` + base64 of at least 24 bytes); without it a send with status_callback is refused */
  WEBHOOK_SIGNING_SECRET: optionalString.refine((v) => v === undefined || isWebhookSecret(v), {
    message: "WEBHOOK_SIGNING_SECRET must be whsec_ followed by the base64 of at least 24 bytes",
  }),
  /** how long one delivery attempt may take before it counts as failed */
  WEBHOOK_TIMEOUT_MS: num(10000, { min: 100, max: 60000, int: true }),
  /** seconds to wait after each failed attempt; after the last one the event is given up (default ≈ 27.6 h in 8 attempts) */
  WEBHOOK_RETRY_SCHEDULE: list("5,300,1800,7200,18000,36000,36000").pipe(
    z.array(z.string().refine((v) => Number.isFinite(Number(v)) && Number(v) >= 0 && Number(v) <= 7 * 86400, "each delay must be 0-604800 seconds")).min(1).max(30).transform((v) => v.map(Number)),
  ),
  /** an endpoint whose attempts have failed without a single success for this long is disabled */
  WEBHOOK_DISABLE_AFTER_SECONDS: num(5 * 86400, { min: 60, max: 90 * 86400, int: true }),
  /** inbound media (email attachments, MMS media) copied into R2: the cap per item; a larger one is not kept (recorded on the timeline) */
  MEDIA_MAX_BYTES: num(10 * 1024 * 1024, { min: 1024, max: 30 * 1024 * 1024, int: true }),
  /** fetches of one MMS's media before it is given up (each failure is on the message's timeline) */
  MEDIA_FETCH_MAX_ATTEMPTS: num(8, { min: 1, max: 50, int: true }),
  /** the first wait (seconds) before a failed media fetch is tried again; doubles up to an hour */
  MEDIA_FETCH_RETRY_DELAY: num(10, { min: 0.01, max: 3600 }),
  SIMULATOR_LATENCY_MS: num(0, { min: 0, max: 60000, int: true }),
  SIMULATOR_FAILURE_RATE: num(0, { min: 0, max: 1 }),
  SIMULATOR_429_RATE: num(0, { min: 0, max: 1 }),
});

export type Config = z.output<typeof ConfigSchema> & { authRequired: boolean };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

const cache = new WeakMap<object, Config>();

/** Parses the Worker env once per env object; throws ConfigError naming every bad setting. */
export function loadConfig(env: object): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = (env as Record<string, unknown>)[key];
    if (value !== undefined) raw[key] = typeof value === "string" ? value : String(value);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`));
  }
  const config: Config = { ...parsed.data, authRequired: parsed.data.API_KEYS.length > 0 || parsed.data.ENVIRONMENT !== "development" };
  cache.set(env, config);
  return config;
}

const httpsOnly = (value: string | undefined) => value === undefined || new URL(value).protocol === "https:";

/**
 * Settings that are missing or unsafe for a deployment outside development. /ready reports them and
 * they are logged once per isolate; none of them stops the service (auth and webhooks already fail
 * closed), but each names what an operator must set.
 */
export function configurationProblems(config: Config): string[] {
  if (config.ENVIRONMENT === "development") return [];
  const problems: string[] = [];
  if (config.API_KEYS.length === 0) problems.push("API_KEYS is not set: every protected route answers 401");
  if (!config.PUBLIC_BASE_URL) problems.push("PUBLIC_BASE_URL is not set: no status callbacks, and Twilio signatures cannot be checked");
  else if (!httpsOnly(config.PUBLIC_BASE_URL)) problems.push("PUBLIC_BASE_URL must be an https URL");
  if (!config.TWILIO_AUTH_TOKEN) problems.push("TWILIO_AUTH_TOKEN is not set: Twilio webhooks are refused");
  if (!config.SENDGRID_WEBHOOK_PUBLIC_KEY) problems.push("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid Event Webhook deliveries are refused");
  if (!config.SENDGRID_PARSE_PUBLIC_KEY) problems.push("SENDGRID_PARSE_PUBLIC_KEY is not set: SendGrid Inbound Parse deliveries are refused");
  if (config.METRICS_ENABLED && !config.METRICS_TOKEN) problems.push("METRICS_TOKEN is not set: /metrics is readable by anyone");
  if (!config.WEBHOOK_SIGNING_SECRET) problems.push("WEBHOOK_SIGNING_SECRET is not set: sends with a status_callback are refused");
  if (config.NEON_WS_PROXY) problems.push("NEON_WS_PROXY is a development setting: unset it");
  if (!httpsOnly(config.TWILIO_API_BASE_URL)) problems.push("TWILIO_API_BASE_URL must be an https URL");
  if (!httpsOnly(config.SENDGRID_API_BASE_URL)) problems.push("SENDGRID_API_BASE_URL must be an https URL");
  if (!httpsOnly(config.UPSTASH_REDIS_REST_URL)) problems.push("UPSTASH_REDIS_REST_URL must be an https URL");
  return problems;
}

/**
 * The settings that are secrets (`wrangler secret put`, never in wrangler.toml), with whether a
 * production deployment needs them. `npm run secrets` prints the commands from this list.
 */
export const SECRETS = {
  DATABASE_URL: "required: Neon pooled connection string",
  UPSTASH_REDIS_REST_URL: "required: Upstash REST URL (https)",
  UPSTASH_REDIS_REST_TOKEN: "required: Upstash REST token",
  API_KEYS: "required: comma-separated bearer keys: NAME:SCOPES:SHA256HEX entries (npm run keys -- create) or raw admin keys",
  PUBLIC_BASE_URL: "required: the service's public https origin (callbacks, signatures)",
  TWILIO_ACCOUNT_SID: "required for SMS/MMS",
  TWILIO_AUTH_TOKEN: "required for SMS/MMS: REST auth and webhook signatures",
  TWILIO_API_KEY_SID: "optional: API key auth instead of the auth token",
  TWILIO_API_KEY_SECRET: "optional: with TWILIO_API_KEY_SID",
  TWILIO_MESSAGING_SERVICE_SID: "optional: send from a Messaging Service",
  SENDGRID_API_KEY: "required for email",
  SENDGRID_WEBHOOK_PUBLIC_KEY: "required for SendGrid Event Webhook signatures",
  SENDGRID_PARSE_PUBLIC_KEY: "required for SendGrid Inbound Parse signatures",
  WEBHOOK_SIGNING_SECRET: "required for status_callback: whsec_ + base64 of 24+ random bytes",
  METRICS_TOKEN: "recommended: the bearer token Prometheus sends to /metrics",
} as const satisfies Partial<Record<keyof typeof ConfigSchema.shape, string>>;
