// A circuit breaker per provider, kept by each QueueWorker shard (docs/architecture.md: our faults are not the
// message's). A provider that refuses our credentials, answers 5xx or times out for many different
// messages in a row, or throttles us, is paused as a whole: the shard stops reading its stream, so
// messages wait in the queue without spending attempts, and at growing intervals it lets one real
// message through as a probe (half-open). A successful call closes the circuit.
//
// Pure state and decisions, no I/O: the QueueWorker persists the state in its Durable Object
// storage (it survives eviction) and publishes it in Redis for /ready, the queue stats and metrics.

export type CircuitReason = "credentials" | "outage" | "throttled";

export interface CircuitState {
  state: "closed" | "open" | "half_open";
  reason: CircuitReason | null;
  /** epoch ms when it opened; null while closed */
  openedAt: number | null;
  /** epoch ms of the next probe while open */
  nextProbeAt: number | null;
  /** the wait before the next probe after a failed one (doubles up to the maximum) */
  probeIntervalMs: number;
  /** distinct messages that failed provider-wide since the last sign of life */
  failing: string[];
  /** the provider's last provider-wide error, for operators: "20003: Authenticate" */
  lastError: string | null;
}

export interface CircuitSettings {
  /** distinct messages failing with 5xx/timeouts in a row that open the circuit */
  failureThreshold: number;
  probeMinMs: number;
  probeMaxMs: number;
}

/** What one provider call told us about the provider (not about the message). */
export type Evidence =
  | { kind: "alive" }
  | { kind: "neutral" }
  | { kind: "credentials"; error: string }
  | { kind: "throttled"; error: string; retryAfterMs: number }
  | { kind: "outage"; messageId: string; error: string };

export const closedCircuit = (probeMinMs: number): CircuitState => ({
  state: "closed",
  reason: null,
  openedAt: null,
  nextProbeAt: null,
  probeIntervalMs: probeMinMs,
  failing: [],
  lastError: null,
});

export class Circuit {
  constructor(
    private s: CircuitState,
    private readonly settings: CircuitSettings,
  ) {}

  get state(): CircuitState {
    return this.s;
  }

  /**
   * How many messages the shard may attempt now: any number while closed, one probe when a probe is
   * due, none while open (then `wakeAt` says when to look again).
   */
  allowance(now: number): { limit: number | null; wakeAt?: number } {
    if (this.s.state === "closed") return { limit: null };
    if (this.s.state === "open" && this.s.nextProbeAt !== null && now < this.s.nextProbeAt) return { limit: 0, wakeAt: this.s.nextProbeAt };
    this.s = { ...this.s, state: "half_open" };
    return { limit: 1 };
  }

  /** Another sign that the provider is up (a callback it signed): probe at once rather than wait. */
  nudge(now: number): boolean {
    if (this.s.state !== "open" || this.s.reason === "throttled") return false;
    this.s = { ...this.s, nextProbeAt: now };
    return true;
  }

  /**
   * Feeds the evidence of a batch, in order. Returns whether the state changed and whether the
   * circuit was (or became) open because of this batch: outcomes that failed provider-wide in such a
   * batch do not count against their message's attempts.
   */
  observe(evidence: Evidence[], now: number): { changed: boolean; providerDown: boolean } {
    const before = JSON.stringify(this.s);
    let providerDown = this.s.state !== "closed";
    for (const e of evidence) {
      if (e.kind === "neutral") continue;
      if (e.kind === "alive") {
        this.s = closedCircuit(this.settings.probeMinMs);
        providerDown = false;
        continue;
      }
      providerDown = true;
      // Calls that were already in flight when it opened say nothing new.
      if (this.s.state === "open") continue;
      if (e.kind === "throttled") {
        // The provider says when: wait that long, then try again, without growing the interval.
        this.open("throttled", e.error, now, Math.max(1000, e.retryAfterMs));
      } else if (e.kind === "credentials" || this.s.state === "half_open") {
        this.open(e.kind, e.error, now, 0);
      } else {
        const failing = this.s.failing.includes(e.messageId) ? this.s.failing : [...this.s.failing, e.messageId];
        this.s = { ...this.s, failing, lastError: e.error };
        if (failing.length >= this.settings.failureThreshold) this.open("outage", e.error, now, 0);
        else providerDown = false;
      }
    }
    return { changed: JSON.stringify(this.s) !== before, providerDown };
  }

  /** Opens, or after a failed probe opens again with twice the wait; `waitMs` 0 means that interval. */
  private open(reason: CircuitReason, error: string, now: number, waitMs: number) {
    const probeFailed = this.s.state === "half_open" && this.s.reason === reason;
    const interval = probeFailed ? Math.min(this.settings.probeMaxMs, this.s.probeIntervalMs * 2) : this.settings.probeMinMs;
    this.s = {
      state: "open",
      reason,
      openedAt: this.s.state === "half_open" ? (this.s.openedAt ?? now) : now,
      nextProbeAt: now + (waitMs > 0 ? waitMs : interval),
      probeIntervalMs: interval,
      failing: [],
      lastError: error,
    };
  }
}
