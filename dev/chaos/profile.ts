// What a chaos run does and when: the load, the fault schedule, and the Worker settings that make
// retries and lease recovery happen within minutes rather than the production defaults' hours.

export type FaultStep =
  | { at: number; kind: "provider"; seconds: number; outcomes: string[]; label: string }
  | { at: number; kind: "credentials"; seconds: number; label: string }
  | { at: number; kind: "redis" | "postgres"; seconds: number; label: string }
  | { at: number; kind: "evict"; label: string };

export interface Profile {
  name: string;
  /**
   * sends offered per second as a multiple of the send capacity measured at the start of the run
   * (calibrate.ts), so that runs on different machines test the same overload
   */
  offerMultiple: number;
  /** the most sends offered per second whatever the capacity (keeps the CI run's size bounded) */
  maxRatePerS: number;
  /** MESSAGES fixes the number of sends instead (then the rate is messages / durationS) */
  messages?: number;
  /** seconds over which the messages are sent */
  durationS: number;
  /** seconds from the start of the load */
  faults: FaultStep[];
  /** how often the cron trigger fires, as the platform does every minute */
  cronIntervalS: number;
  /** give up waiting for the queue to drain after this many seconds past the last fault */
  drainTimeoutS: number;
  /** one inbound SMS webhook (delivered twice) per this many sends */
  inboundEvery: number;
  /** every this many seconds, redeliver a sample of callbacks the service already answered */
  redeliverEveryS: number;
  /**
   * the whole run's ceiling in seconds, from start to report: past it the run stops, lists what was
   * still open (requests in flight, messages not final, with their timelines) and exits 1
   */
  ceilingS: number;
  /** each request of the load gets no answer ("timeout") past this many ms */
  requestTimeoutMs: number;
}

/** The Worker's settings for the run: retries within seconds, a short lease, signatures checked. */
export const WORKER_VARS: Record<string, string> = {
  RATE_LIMIT_ENABLED: "false",
  SHARDS_PER_TYPE: "2",
  QUEUE_MAX_ATTEMPTS: "8",
  QUEUE_RETRY_DELAY: "1",
  QUEUE_RETRY_MAX_DELAY: "8",
  QUEUE_LEASE_SECONDS: "20",
  PROVIDER_TIMEOUT_MS: "2000",
  // SendGrid's events of an ambiguous send may take half a minute on an overloaded machine
  RECONCILE_WINDOW_SECONDS: "60",
  // an open circuit (outage, revoked credentials) probes at least every 8 s, as retries back off to 8 s
  CIRCUIT_PROBE_MAX_MS: "8000",
  // The customer's status webhook endpoint fails and hangs (run.ts): a hang costs 2 s, not 10, and
  // a failed event is tried again within seconds, for about 90 s, not a day.
  WEBHOOK_TIMEOUT_MS: "2000",
  WEBHOOK_RETRY_SCHEDULE: "1,2,4,8,8,8,8,8,8,8,8,8,8",
};

/**
 * What the customer's status webhook endpoint answers, request after request (then 200): every
 * 9th a 500, every 97th never answered (the service's timeout ends it).
 */
export function customerAnswers(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i % 97 === 50 ? "hang" : i % 9 === 4 ? "500" : "200"));
}

type Moments = Record<"outage" | "rateLimit" | "credentials" | "redis" | "postgres" | "hang" | "evict", number>;

/** The faults, each at its second from the start of the load. */
function faultSchedule(at: Moments, seconds: { outage: number; provider: number; credentials: number; service: number }): FaultStep[] {
  return [
    { at: at.outage, kind: "provider", seconds: seconds.outage, outcomes: ["500"], label: "provider outage: 500 to everything" },
    { at: at.rateLimit, kind: "provider", seconds: seconds.provider, outcomes: ["429:2"], label: "provider answers 429, Retry-After: 2" },
    { at: at.credentials, kind: "credentials", seconds: seconds.credentials, label: "provider credentials revoked (401), then restored" },
    { at: at.redis, kind: "redis", seconds: seconds.service, label: "Redis stopped (SIGKILL)" },
    { at: at.postgres, kind: "postgres", seconds: seconds.service, label: "Postgres stopped (immediate shutdown)" },
    // Half of the hung requests were accepted before the hang: the ambiguous outcome.
    { at: at.hang, kind: "provider", seconds: seconds.provider, outcomes: ["hang", "accept-then-hang"], label: "provider hangs past the timeout" },
    { at: at.evict, kind: "evict", label: "workerd killed mid-batch: Durable Objects evicted" },
  ];
}

const EVERY_PROFILE = { cronIntervalS: 60, inboundEvery: 25, redeliverEveryS: 10, offerMultiple: 1.5, requestTimeoutMs: 20_000 };

export const PROFILES: Record<string, Profile> = {
  default: {
    ...EVERY_PROFILE,
    name: "default",
    maxRatePerS: 60,
    durationS: 250,
    faults: faultSchedule(
      { outage: 10, rateLimit: 140, credentials: 155, redis: 195, postgres: 210, hang: 225, evict: 240 },
      { outage: 120, provider: 10, credentials: 30, service: 10 },
    ),
    drainTimeoutS: 300,
    ceilingS: 1500,
  },
  ci: {
    ...EVERY_PROFILE,
    name: "ci",
    maxRatePerS: 15,
    durationS: 90,
    faults: faultSchedule(
      { outage: 3, rateLimit: 26, credentials: 33, redis: 52, postgres: 62, hang: 74, evict: 80 },
      { outage: 20, provider: 5, credentials: 15, service: 8 },
    ),
    drainTimeoutS: 200,
    ceilingS: 540,
  },
};

/**
 * `--profile ci` or CHAOS_PROFILE; MESSAGES and DURATION_S override the profile's load (MESSAGES
 * replaces the calibrated rate), CHAOS_CEILING_S its ceiling, CHAOS_OFFER_MULTIPLE its multiple.
 */
export function chosenProfile(argv: string[], env: NodeJS.ProcessEnv): Profile {
  const flag = argv.indexOf("--profile");
  const name = (flag >= 0 ? argv[flag + 1] : undefined) ?? env.CHAOS_PROFILE ?? "default";
  const base = PROFILES[name];
  if (!base) throw new Error(`unknown chaos profile "${name}" (known: ${Object.keys(PROFILES).join(", ")})`);
  const profile = { ...base };
  if (env.MESSAGES) profile.messages = Number(env.MESSAGES);
  if (env.DURATION_S) profile.durationS = Number(env.DURATION_S);
  if (env.CHAOS_CEILING_S) profile.ceilingS = Number(env.CHAOS_CEILING_S);
  if (env.CHAOS_OFFER_MULTIPLE) profile.offerMultiple = Number(env.CHAOS_OFFER_MULTIPLE);
  const positive = (n: number | undefined) => n === undefined || n > 0;
  if (![profile.messages, profile.durationS, profile.ceilingS, profile.offerMultiple].every(positive)) {
    throw new Error("MESSAGES, DURATION_S, CHAOS_CEILING_S and CHAOS_OFFER_MULTIPLE must be positive numbers");
  }
  return profile;
}
