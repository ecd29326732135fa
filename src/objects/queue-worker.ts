// The QueueWorker Durable Object: one per (message type, shard), named `{type}:{shard}`, a consumer
// of its type's stream in the group `workers`. It sleeps with no alarm until the doorbell (`wake`)
// or the sweep rings; its alarm loop then works batch by batch within a time budget and re-arms
// at its end (docs/message-path.md).
//
// What it keeps in its own storage, so that faults cost seconds rather than a lease:
// - the journal of claims and outcomes (./journal.ts), finished by the next run after a crash or
//   while Postgres is down;
// - message ids whose stream entry the send route could not write, written when Redis answers;
// - scheduled sends and their due times (`schedule`): the alarm is armed at the earliest, so a
//   scheduled message is handed to the stream at its time with no polling, after an eviction
//   too (the alarm and the storage survive it) and whatever Redis lost meanwhile;
// - its provider's circuit breaker (../queue/circuit.ts): while the provider is down the shard
//   stops reading, so messages wait without spending attempts, and it probes with one message.
import { DurableObject } from "cloudflare:workers";
import { loadConfig, type Config } from "../config";
import { openDatabase, type Database } from "../db/client";
import { errorFields, log } from "../log";
import { providerNameFor } from "../providers/types";
import { Circuit, closedCircuit, type CircuitState } from "../queue/circuit";
import { attemptAll, claim, decide, evidenceOf, followUps, interruptedOutcome, recordOutcomes, SubrequestBudget, type Outcome } from "../queue/processing";
import { openRedis, type Redis } from "../queue/redis";
import { enqueueMany } from "../queue/streams";
import { workerStep, type StepInput } from "../queue/worker-step";
import { recordProcessing, flushSamples } from "../services/metrics";
import { ringWebhookWorker } from "../services/outbound-webhooks";
import type { Channel } from "../validation/address";
import { UUID } from "../validation/common";
import { Journal } from "./journal";

const HEARTBEAT_EVERY_MS = 5_000;
/**
 * When the stream was drained but doorbells keep ringing (a steady trickle), wait this long before
 * the next read so that a batch gathers: fewer Redis commands per message, a little latency under
 * load. At light load no doorbell rings during a run and nothing waits.
 */
const GATHER_MS = 100;
/** At most this many doorbell-handed ids are remembered; beyond it the stream read finds them. */
const MAX_HANDED = 10_000;
/** A catch-up read takes at most this many entries (worked-ahead ones only need their ack). */
const MAX_READ = 1_000;
/** Retry delays after a failed run (Postgres or Redis down); the journal is finished on the next. */
const ERROR_BACKOFF_MS = [500, 1_000, 2_000, 5_000];
/** Subrequests kept for the run's own bookkeeping: the last Redis step, journal recovery, metrics. */
const RESERVED_SUBREQUESTS = 8;

export interface WorkerStats {
  name: string;
  running: boolean;
  runs: number;
  batches: number;
  processed: number;
  lastRunAt: string | null;
  lastError: string | null;
  nextAlarmAt: string | null;
  circuit: CircuitState;
  /** claims and outcomes in the journal, not yet finished */
  journal: number;
  /** scheduled sends waiting for their time in this shard */
  scheduled: number;
}

/** What the next Redis step must carry: acks of the last batch and what its outcomes owe Redis. */
interface Carry {
  ack: string[];
  outcomes: Outcome[];
  recorded: Set<string>;
}

const emptyCarry = (): Carry => ({ ack: [], outcomes: [], recorded: new Set() });

const earliestOf = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));

export class QueueWorker extends DurableObject<Env> {
  private running: Promise<void> | null = null;
  /** the doorbell rang while a run was in progress: more work may be waiting */
  private rung = false;
  /** read our own pending list first: a fresh instance may have been evicted mid-batch */
  private recheckPending = true;
  /** the earliest scheduled retry as last seen: null none, undefined not known */
  private earliestDue: number | null | undefined = undefined;
  private lastHeartbeat = 0;
  private unreported = { processed: 0, failed: 0 };
  private consecutiveErrors = 0;
  private counters = { runs: 0, batches: 0, processed: 0, lastRunAt: null as string | null, lastError: null as string | null };
  private readonly journal: Journal;
  private circuitState: CircuitState | undefined;
  /** the circuit changed since it was last published to Redis */
  private circuitDirty = true;
  /** a send was scheduled while a run was in progress: its end re-arms the alarm for it */
  private scheduledDuringRun = false;
  /**
   * Message ids whose doorbell named them after their stream entry was written: worked at once
   * without reading the stream (the claim in Postgres is the fence against working one twice).
   * Memory only: an id lost with an eviction is still in the stream for the catch-up read.
   */
  private handed = new Set<string>();
  /** ids worked from `handed` whose stream entries the catch-up read has not acknowledged yet */
  private handledAhead = new Set<string>();
  private lastCatchUp = 0;
  /** drain(): read the stream to its end before sleeping, whatever the catch-up interval says */
  private catchUpNow = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.journal = new Journal(ctx.storage.sql);
  }

  private workerName(): string {
    const name = this.ctx.id.name;
    if (!name || !/^(sms|mms|email):\d+$/.test(name)) throw new Error(`QueueWorker needs a name like "sms:0", got ${name}`);
    return name;
  }

  private circuit(config: Config): Circuit {
    this.circuitState ??= this.ctx.storage.kv.get<CircuitState>("circuit") ?? closedCircuit(config.CIRCUIT_PROBE_MIN_MS);
    return new Circuit(this.circuitState, {
      failureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
      probeMinMs: config.CIRCUIT_PROBE_MIN_MS,
      probeMaxMs: config.CIRCUIT_PROBE_MAX_MS,
    });
  }

  private saveCircuit(circuit: Circuit) {
    if (JSON.stringify(circuit.state) === JSON.stringify(this.circuitState)) return;
    const before = this.circuitState?.state;
    this.circuitState = circuit.state;
    this.circuitDirty = true;
    this.ctx.storage.kv.put("circuit", circuit.state);
    if (before !== circuit.state.state) {
      log(circuit.state.state === "closed" ? "info" : "warn", "circuit_changed", {
        worker: this.workerName(),
        provider: providerNameFor(this.workerName().split(":")[0] as Channel),
        from: before,
        to: circuit.state.state,
        reason: circuit.state.reason,
        last_error: circuit.state.lastError,
      });
    }
  }

  private async armNow() {
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > Date.now()) await this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * The doorbell: costs no Redis command; starts a run now unless one is running. `recheck` comes
   * from the sweep (entries reclaimed into our pending list, retries moved or scheduled elsewhere).
   */
  async wake(recheck = false, messageId?: string): Promise<void> {
    if (messageId !== undefined && UUID.test(messageId) && this.handed.size < MAX_HANDED) this.handed.add(messageId);
    // else something is in the stream that no handed id stands for (a retry, the sweep's find)
    else this.catchUpNow = true;
    if (recheck) {
      this.recheckPending = true;
      this.earliestDue = undefined;
    }
    if (this.running) {
      this.rung = true;
      return;
    }
    // An open circuit keeps its own schedule (the next probe); a doorbell does not override it.
    const allowance = this.circuit(loadConfig(this.env)).allowance(Date.now());
    if (allowance.limit === 0) return;
    await this.armNow();
  }

  /** The send route could not write this message's stream entry: keep it and write it when Redis answers. */
  async enqueueLater(messageId: string): Promise<void> {
    if (!UUID.test(messageId)) throw new Error(`not a message id: ${messageId}`);
    this.journal.unqueue(messageId, this.workerName().split(":")[0] as Channel);
    // During a run an alarm set now would be deleted when the run ends and goes to sleep: the run
    // re-arms itself instead (see run()), as for a doorbell.
    if (this.running) {
      this.rung = true;
      return;
    }
    await this.armNow();
  }

  /**
   * A scheduled send (src/services/delivery.ts): kept in storage with its due time, and the alarm
   * armed for it unless an earlier one is set. At its time the run writes its stream entry and
   * works it like any other; the claim refuses it before its time and after a cancel.
   */
  async schedule(messageId: string, dueAt: number): Promise<void> {
    if (!UUID.test(messageId)) throw new Error(`not a message id: ${messageId}`);
    if (!Number.isFinite(dueAt)) throw new Error(`not a due time: ${dueAt}`);
    this.journal.schedule(messageId, this.workerName().split(":")[0] as Channel, dueAt);
    if (this.running) {
      // The run's end sets the alarm from storage; this one may have missed its look.
      this.scheduledDuringRun = true;
      return;
    }
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > dueAt) await this.ctx.storage.setAlarm(Math.max(dueAt, Date.now()));
  }

  /** The provider signed a callback or an inbound message: it is up, so an open circuit probes now. */
  async providerAlive(): Promise<void> {
    const circuit = this.circuit(loadConfig(this.env));
    if (!circuit.nudge(Date.now())) return;
    this.saveCircuit(circuit);
    await this.armNow();
  }

  async stats(): Promise<WorkerStats> {
    const alarm = await this.ctx.storage.getAlarm();
    return {
      name: this.workerName(),
      running: this.running !== null,
      ...this.counters,
      nextAlarmAt: alarm === null ? null : new Date(alarm).toISOString(),
      circuit: this.circuit(loadConfig(this.env)).state,
      journal: this.journal.size,
      scheduled: this.journal.scheduledCount,
    };
  }

  /** Tests and tools: run the loop now and wait until it has nothing left to do. */
  async drain(): Promise<WorkerStats> {
    if (this.running) await this.running;
    this.earliestDue = undefined;
    this.catchUpNow = true;
    await this.alarm();
    return this.stats();
  }

  override async alarm(): Promise<void> {
    if (this.running) {
      this.rung = true;
      return this.running;
    }
    this.running = this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<void> {
    const name = this.workerName();
    const type = name.split(":")[0] as Channel;
    const config = loadConfig(this.env);
    this.rung = false;
    this.scheduledDuringRun = false;
    this.counters.runs++;
    this.counters.lastRunAt = new Date().toISOString();
    let next: number | null;
    try {
      next = await this.work(config, name, type);
      this.consecutiveErrors = 0;
      this.counters.lastError = null;
    } catch (error) {
      // Postgres or Redis is unavailable: try again soon, on our own schedule rather than the
      // platform's alarm retries (which give up). The journal and our pending list keep the work.
      this.consecutiveErrors++;
      this.recheckPending = true;
      this.circuitDirty = true;
      this.earliestDue = undefined;
      this.counters.lastError = error instanceof Error ? error.message : String(error);
      const delay = ERROR_BACKOFF_MS[Math.min(this.consecutiveErrors, ERROR_BACKOFF_MS.length) - 1]!;
      log("error", "worker_run_failed", { worker: name, retry_in_ms: delay, journal: this.journal.size, ...errorFields(error) });
      await this.ctx.storage.setAlarm(Date.now() + delay);
      return;
    }
    // Forced when the shard goes to sleep: its samples must not wait in memory for the next run.
    await flushSamples(this.env, next === null).catch(() => undefined);
    // Re-arm late: now if more may wait, else at the earliest due retry, probe or scheduled
    // send, else sleep. Read and set with no await between, so that no schedule() slips past.
    // Entries handed over while this run was past writeUnqueued are written by the next run.
    if ((this.rung || this.journal.unqueued().length > 0) && next === null) next = Date.now();
    // An id handed over after the run's last look must not wait for the catch-up interval.
    if ((this.handed.size > 0 || this.catchUpNow) && (this.circuitState?.state ?? "closed") === "closed") next = Date.now();
    next = earliestOf(next, this.journal.earliestScheduled());
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
    else await this.ctx.storage.deleteAlarm();
    // A send scheduled while the alarm was being set: arm for it if it is earlier.
    if (this.scheduledDuringRun) {
      this.scheduledDuringRun = false;
      const due = earliestOf(next, this.journal.earliestScheduled());
      if (due !== null && due !== next) await this.ctx.storage.setAlarm(Math.max(due, Date.now()));
    }
  }

  /**
   * One run: finish what the journal holds, write stream entries the route could not, then batches
   * until the stream is drained, the time or subrequest budget is spent, or the circuit says wait.
   * Returns when the next run should start (epoch ms), or null to sleep until a doorbell.
   */
  private async work(config: Config, name: string, type: Channel): Promise<number | null> {
    const redis = openRedis(config);
    const db = openDatabase(config);
    const budget = new SubrequestBudget(config.SUBREQUEST_BUDGET);
    const deadline = Date.now() + config.QUEUE_TIME_BUDGET_MS;
    try {
      let carry = await this.finishJournal(config, db, budget, type);
      const circuit = this.circuit(config);
      for (;;) {
        // Scheduled sends that came due (also during a long run under load) and entries the route
        // could not write go to the stream first; nothing to do costs one SQLite read.
        this.journal.releaseDue(Date.now());
        await this.writeUnqueued(redis, budget);
        const allowance = circuit.allowance(Date.now());
        this.saveCircuit(circuit);
        const affordable = Math.floor((budget.remaining - RESERVED_SUBREQUESTS) / 2);
        const count = Date.now() < deadline ? Math.min(config.QUEUE_BATCH_SIZE, allowance.limit ?? Infinity, Math.max(0, affordable)) : 0;
        // Only a closed circuit works handed ids; otherwise the circuit decides what is tried, and
        // the stream holds them.
        if (allowance.limit !== null) this.handed.clear();
        if (count > 0 && !this.recheckPending && !this.catchUpDue(config, carry)) {
          if (this.handed.size > 0) {
            const ids = [...this.handed].slice(0, count);
            for (const id of ids) this.handed.delete(id);
            const worked = await this.workBatch(config, db, budget, circuit, ids);
            // Only a claimed id is done with; one the claim passed over (its row locked by another
            // statement, not yet due, worked by another shard) is left to the stream, read now.
            for (const id of worked.claimed) this.handledAhead.add(id);
            if (worked.claimed.length < ids.length) this.catchUpNow = true;
            carry = { ack: carry.ack, outcomes: [...carry.outcomes, ...worked.outcomes], recorded: new Set([...carry.recorded, ...worked.recorded]) };
            continue;
          }
          // Every handed id is worked and nothing owes Redis yet: the catch-up read waits for its
          // time (the journal keeps what it will carry), so that a steady trickle costs one read
          // and one acknowledgement per interval rather than per doorbell.
          if (this.handledAhead.size > 0) return this.soonest(this.lastCatchUp + config.QUEUE_CATCH_UP_MS);
        }
        // The stream read. Entries worked ahead from their doorbell are only acknowledged; the read
        // takes them on top of a batch (and leaves any excess in our pending list for the next).
        const readCount = count === 0 ? 0 : Math.min(count + this.handledAhead.size, MAX_READ);
        const step = await workerStep(redis, this.stepInput(name, type, carry, readCount, count === 0));
        budget.spend();
        this.journal.forget(carry.recorded);
        carry = emptyCarry();
        if (step.earliestDue !== undefined) this.earliestDue = step.earliestDue;
        if (count === 0) {
          if (allowance.limit === 0) return this.soonest(allowance.wakeAt ?? null);
          return Date.now(); // out of time or subrequests: a fresh invocation continues
        }
        if (step.source === ">") this.recheckPending = false;
        if (step.entries.length < readCount && step.source === ">") {
          // Drained: what was worked ahead has been read (by us or by another shard of the type).
          this.handledAhead.clear();
          this.lastCatchUp = Date.now();
          this.catchUpNow = false;
        }
        if (step.entries.length === 0) return this.soonest(null);

        // A malformed entry (no data, not JSON, not a UUID) is acknowledged and dropped, never retried.
        const fresh = [...new Set(step.entries.map((e) => e.messageId).filter((id): id is string => id !== null && UUID.test(id) && !this.handledAhead.has(id)))];
        for (const e of step.entries) if (e.messageId) this.handed.delete(e.messageId);
        // More fresh entries than one batch: the rest stay in our pending list, read first next time.
        const ids = fresh.slice(0, count);
        const deferred = new Set(fresh.slice(count));
        if (deferred.size > 0) this.recheckPending = true;
        const worked = ids.length > 0 ? await this.workBatch(config, db, budget, circuit, ids) : { outcomes: [], recorded: new Set<string>() };
        for (const e of step.entries) if (e.messageId) this.handledAhead.delete(e.messageId);
        carry = { ack: step.entries.filter((e) => !(e.messageId && deferred.has(e.messageId))).map((e) => e.entryId), outcomes: worked.outcomes, recorded: worked.recorded };

        // A short read means the stream was drained when we read it; a doorbell tells us otherwise.
        if (step.entries.length < readCount && step.source === ">") {
          if (!this.rung || circuit.state.state !== "closed") {
            const flush = await workerStep(redis, this.stepInput(name, type, carry, 0, true));
            budget.spend();
            this.journal.forget(carry.recorded);
            if (flush.earliestDue !== undefined) this.earliestDue = flush.earliestDue;
            return this.soonest(circuit.state.state === "open" ? circuit.state.nextProbeAt : null);
          }
          this.rung = false;
          await new Promise((r) => setTimeout(r, GATHER_MS));
        }
      }
    } finally {
      await db.end();
    }
  }

  /**
   * Claim, attempt and record one batch; rings the status webhooks' worker when an outcome wrote
   * message.sent or message.failed. What the outcomes owe Redis rides on the next stream step.
   */
  private async workBatch(config: Config, db: Database, budget: SubrequestBudget, circuit: Circuit, ids: string[]): Promise<{ claimed: string[]; outcomes: Outcome[]; recorded: Set<string> }> {
    const claimed = await claim(db, ids);
    budget.spend();
    this.journal.claimed(claimed);
    const attempted = await attemptAll(config, db, claimed, budget);
    const { providerDown } = circuit.observe(
      attempted.map((a) => evidenceOf(a.error, a.message.id)),
      Date.now(),
    );
    this.saveCircuit(circuit);
    const outcomes = attempted.map((a) => decide(config, a, providerDown, circuit.state.nextProbeAt));
    this.journal.decided(outcomes);
    const { recorded, failed } = await recordOutcomes(db, outcomes);
    budget.spend(1 + (failed.length > 0 ? outcomes.length : 0));
    this.journal.recorded(recorded);
    if (outcomes.some((o) => recorded.has(o.id) && (o.status === "sent" || o.status === "failed"))) {
      await ringWebhookWorker(this.env);
      budget.spend();
    }
    // Outcomes not recorded: stale (a newer claim won) or refused by a constraint (logged). The
    // newer claim owns the message; a refused row is recovered after the lease.
    this.journal.forget(outcomes.filter((o) => !recorded.has(o.id)).map((o) => o.id));
    this.counters.batches++;
    this.counters.processed += outcomes.length;
    for (const o of outcomes) recordProcessing(o.type, o.providerName, o.status === "sent" ? "success" : "error", o.durationMs / 1000);
    return { claimed: claimed.map((c) => c.id), outcomes, recorded };
  }

  /**
   * The stream must be read now rather than at the next catch-up: asked to (drain, a doorbell that
   * named no message), the interval is up, a batch's entries await their acknowledgement, outcomes
   * owe Redis a retry or a dead letter, or a scheduled retry is due (or not known).
   */
  private catchUpDue(config: Config, carry: Carry): boolean {
    const now = Date.now();
    if (this.catchUpNow || now - this.lastCatchUp >= config.QUEUE_CATCH_UP_MS || carry.ack.length > 0) return true;
    const { retries, deadLetters } = followUps(carry.outcomes, carry.recorded);
    if (retries.length > 0 || deadLetters.length > 0) return true;
    return this.earliestDue === undefined || (this.earliestDue !== null && this.earliestDue <= now);
  }

  /** The earliest of a due retry we know of and `other`; null when there is neither. */
  private soonest(other: number | null): number | null {
    const due = typeof this.earliestDue === "number" ? this.earliestDue : null;
    if (due === null) return other;
    return other === null ? due : Math.min(due, other);
  }

  /**
   * After a crash or while Postgres was down: claims whose call was in flight are recorded as
   * ambiguous attempts, decided outcomes are committed; what they owe Redis rides on the next step.
   */
  private async finishJournal(config: Config, db: Database, budget: SubrequestBudget, type: Channel): Promise<Carry> {
    const interrupted = this.journal.inFlight();
    if (interrupted.length > 0) {
      const outcomes = interrupted.map((c) => interruptedOutcome(config, type, c, c.claimedAt));
      this.journal.decided(outcomes);
      log("warn", "worker_interrupted_claims", { worker: this.workerName(), messages: outcomes.length });
    }
    const decided = this.journal.outcomes("decided");
    if (decided.length > 0) {
      const { recorded } = await recordOutcomes(db, decided);
      budget.spend();
      this.journal.recorded(recorded);
      if (decided.some((o) => recorded.has(o.id) && (o.status === "sent" || o.status === "failed"))) {
        await ringWebhookWorker(this.env);
        budget.spend();
      }
      this.journal.forget(decided.filter((o) => !recorded.has(o.id)).map((o) => o.id));
    }
    const owed = this.journal.outcomes("recorded");
    return { ack: [], outcomes: owed, recorded: new Set(owed.map((o) => o.id)) };
  }

  /** Stream entries the send route could not write: one pipeline, kept when Redis is still down. */
  private async writeUnqueued(redis: Redis, budget: SubrequestBudget) {
    const owed = this.journal.unqueued();
    if (owed.length === 0) return;
    await enqueueMany(redis, owed);
    budget.spend();
    this.journal.queued(owed.map((o) => o.id));
    log("info", "unqueued_messages_enqueued", { worker: this.workerName(), messages: owed.length, oldest_age_ms: Date.now() - Math.min(...owed.map((o) => o.addedAt)) });
  }

  private stepInput(name: string, type: Channel, carry: Carry, count: number, final: boolean): StepInput {
    const now = Date.now();
    const owed = carry.outcomes.filter((o) => carry.recorded.has(o.id));
    const { retries, deadLetters } = followUps(owed, carry.recorded);
    this.unreported.processed += owed.filter((o) => o.status === "sent").length;
    this.unreported.failed += owed.filter((o) => o.status === "failed").length;
    // Heartbeat and counters ride along at most every few seconds, and on a run's last step.
    const report = final || now - this.lastHeartbeat >= HEARTBEAT_EVERY_MS;
    const counts = report ? this.unreported : { processed: 0, failed: 0 };
    if (report) {
      this.lastHeartbeat = now;
      this.unreported = { processed: 0, failed: 0 };
    }
    const circuit = this.circuitDirty && this.circuitState ? JSON.stringify(this.circuitState) : null;
    this.circuitDirty = false;
    // Due retries move into the stream when one is known to be due, or when we do not know.
    const moveDue = count > 0 && (this.earliestDue === undefined || (this.earliestDue !== null && this.earliestDue <= now));
    return {
      type,
      consumer: name,
      count,
      ack: carry.ack,
      retries: retries.map((r) => ({ member: r.member, dueAt: r.dueAt })),
      deadLetters: deadLetters.map((d) =>
        JSON.stringify({ message_id: d.id, type: d.type, error_class: d.errorClass, error_code: d.errorCode, at: new Date(now).toISOString() }),
      ),
      processed: counts.processed,
      failed: counts.failed,
      readPendingFirst: count > 0 && this.recheckPending,
      heartbeat: report,
      moveDue,
      wantEarliest: this.earliestDue === undefined,
      circuit,
    };
  }
}
