// What a chaos run does and when: the load, the fault schedule, and the Worker settings that make
// retries and lease recovery happen within minutes rather than the production defaults' hours.

export type FaultStep =
  | { at: number; kind: "provider"; seconds: number; outcomes: string[]; label: string }
  | { at: number; kind: "redis" | "postgres"; seconds: number; label: string }
  | { at: number; kind: "evict"; label: string };

export interface Profile {
  name: string;
  messages: number;
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
};

/** The six faults, each at its second from the start of the load; provider outages last `seconds`. */
function faultSchedule(at: Record<"error500" | "rateLimit" | "redis" | "postgres" | "hang" | "evict", number>, seconds: number): FaultStep[] {
  return [
    { at: at.error500, kind: "provider", seconds, outcomes: ["500"], label: "provider answers 500" },
    { at: at.rateLimit, kind: "provider", seconds, outcomes: ["429:2"], label: "provider answers 429, Retry-After: 2" },
    { at: at.redis, kind: "redis", seconds: 10, label: "Redis stopped (SIGKILL)" },
    { at: at.postgres, kind: "postgres", seconds: 10, label: "Postgres stopped (immediate shutdown)" },
    // Half of the hung requests were accepted before the hang: the ambiguous outcome.
    { at: at.hang, kind: "provider", seconds, outcomes: ["hang", "accept-then-hang"], label: "provider hangs past the timeout" },
    { at: at.evict, kind: "evict", label: "workerd killed mid-batch: Durable Objects evicted" },
  ];
}

const EVERY_PROFILE = { cronIntervalS: 60, inboundEvery: 25, redeliverEveryS: 10 };

export const PROFILES: Record<string, Profile> = {
  default: {
    ...EVERY_PROFILE,
    name: "default",
    messages: 5000,
    durationS: 120,
    faults: faultSchedule({ error500: 10, rateLimit: 25, redis: 40, postgres: 60, hang: 80, evict: 100 }, 10),
    drainTimeoutS: 300,
  },
  ci: {
    ...EVERY_PROFILE,
    name: "ci",
    messages: 700,
    durationS: 50,
    faults: faultSchedule({ error500: 3, rateLimit: 9, redis: 15, postgres: 27, hang: 39, evict: 45 }, 5),
    drainTimeoutS: 200,
  },
};

/** `--profile ci` or CHAOS_PROFILE; MESSAGES and DURATION_S override the profile's load. */
export function chosenProfile(argv: string[], env: NodeJS.ProcessEnv): Profile {
  const flag = argv.indexOf("--profile");
  const name = (flag >= 0 ? argv[flag + 1] : undefined) ?? env.CHAOS_PROFILE ?? "default";
  const base = PROFILES[name];
  if (!base) throw new Error(`unknown chaos profile "${name}" (known: ${Object.keys(PROFILES).join(", ")})`);
  const profile = { ...base };
  if (env.MESSAGES) profile.messages = Number(env.MESSAGES);
  if (env.DURATION_S) profile.durationS = Number(env.DURATION_S);
  if (!(profile.messages > 0 && profile.durationS > 0)) throw new Error("MESSAGES and DURATION_S must be positive numbers");
  return profile;
}
