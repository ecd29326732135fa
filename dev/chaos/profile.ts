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

const providerFaults = (t500: number, t429: number, tHang: number, seconds: number): FaultStep[] => [
  { at: t500, kind: "provider", seconds, outcomes: ["500"], label: "provider answers 500" },
  { at: t429, kind: "provider", seconds, outcomes: ["429:2"], label: "provider answers 429, Retry-After: 2" },
  // Half of the hung requests were accepted before the hang: the ambiguous outcome.
  { at: tHang, kind: "provider", seconds, outcomes: ["hang", "accept-then-hang"], label: "provider hangs past the timeout" },
];

export const PROFILES: Record<string, Profile> = {
  default: {
    name: "default",
    messages: 5000,
    durationS: 120,
    faults: [
      ...providerFaults(10, 25, 80, 10),
      { at: 40, kind: "redis", seconds: 10, label: "Redis stopped (SIGKILL)" },
      { at: 60, kind: "postgres", seconds: 10, label: "Postgres stopped (immediate shutdown)" },
      { at: 100, kind: "evict", label: "workerd killed mid-batch: Durable Objects evicted" },
    ],
    cronIntervalS: 60,
    drainTimeoutS: 300,
    inboundEvery: 25,
    redeliverEveryS: 10,
  },
  ci: {
    name: "ci",
    messages: 700,
    durationS: 50,
    faults: [
      ...providerFaults(3, 9, 39, 5),
      { at: 15, kind: "redis", seconds: 10, label: "Redis stopped (SIGKILL)" },
      { at: 27, kind: "postgres", seconds: 10, label: "Postgres stopped (immediate shutdown)" },
      { at: 45, kind: "evict", label: "workerd killed mid-batch: Durable Objects evicted" },
    ],
    cronIntervalS: 60,
    drainTimeoutS: 200,
    inboundEvery: 25,
    redeliverEveryS: 10,
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

export function faultEndS(step: FaultStep): number {
  return step.at + ("seconds" in step ? step.seconds : 0);
}
