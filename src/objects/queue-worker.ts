// The QueueWorker Durable Object: one per (message type, shard), named `{type}:{shard}`, a consumer
// of its type's stream in the group `workers`. It sleeps with no alarm until the doorbell (`wake`)
// or the sweep rings; its alarm loop then works batch by batch within a time budget and re-arms
// at its end (DESIGN.md §2, invariants 5 and 6).
import { DurableObject } from "cloudflare:workers";
import { loadConfig, type Config } from "../config";
import { openDatabase } from "../db/client";
import { errorFields, log } from "../log";
import { claim, processClaimed, type BatchResult } from "../queue/processing";
import { openRedis } from "../queue/redis";
import { workerStep, type StepInput } from "../queue/worker-step";
import { recordProcessing, flushSamples } from "../services/metrics";
import type { Channel } from "../validation/address";
import { UUID } from "../validation/common";

const HEARTBEAT_EVERY_MS = 5_000;
/**
 * When the stream was drained but doorbells keep ringing (a steady trickle), wait this long before
 * the next read so that a batch gathers: fewer Redis commands per message, a little latency under
 * load. At light load no doorbell rings during a run and nothing waits.
 */
const GATHER_MS = 100;
const ERROR_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export interface WorkerStats {
  name: string;
  running: boolean;
  runs: number;
  batches: number;
  processed: number;
  lastRunAt: string | null;
  lastError: string | null;
  nextAlarmAt: string | null;
}

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

  private workerName(): string {
    const name = this.ctx.id.name;
    if (!name || !/^(sms|mms|email):\d+$/.test(name)) throw new Error(`QueueWorker needs a name like "sms:0", got ${name}`);
    return name;
  }

  /**
   * The doorbell: costs no Redis command; starts a run now unless one is running. `recheck` comes
   * from the sweep (entries reclaimed into our pending list, retries moved or scheduled elsewhere).
   */
  async wake(recheck = false): Promise<void> {
    if (recheck) {
      this.recheckPending = true;
      this.earliestDue = undefined;
    }
    if (this.running) {
      this.rung = true;
      return;
    }
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > Date.now()) await this.ctx.storage.setAlarm(Date.now());
  }

  async stats(): Promise<WorkerStats> {
    const alarm = await this.ctx.storage.getAlarm();
    return {
      name: this.workerName(),
      running: this.running !== null,
      ...this.counters,
      nextAlarmAt: alarm === null ? null : new Date(alarm).toISOString(),
    };
  }

  /** Tests and tools: run the loop now and wait until it has nothing left to do. */
  async drain(): Promise<WorkerStats> {
    if (this.running) await this.running;
    this.earliestDue = undefined;
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
    this.counters.runs++;
    this.counters.lastRunAt = new Date().toISOString();
    let more = false;
    try {
      more = await this.loop(config, name, type);
      this.consecutiveErrors = 0;
      this.counters.lastError = null;
    } catch (error) {
      // Postgres or Redis is unavailable: try again with backoff, on our own schedule rather than
      // the platform's alarm retries (which give up). Unacked entries stay in our pending list.
      this.consecutiveErrors++;
      this.recheckPending = true;
      this.earliestDue = undefined;
      this.counters.lastError = error instanceof Error ? error.message : String(error);
      const delay = ERROR_BACKOFF_MS[Math.min(this.consecutiveErrors, ERROR_BACKOFF_MS.length) - 1]!;
      log("error", "worker_run_failed", { worker: name, retry_in_ms: delay, ...errorFields(error) });
      await this.ctx.storage.setAlarm(Date.now() + delay);
      return;
    }
    await flushSamples(this.env).catch(() => undefined);
    // Re-arm late (invariant 6): now if more may wait, else at the earliest due retry, else sleep.
    if (more || this.rung) await this.ctx.storage.setAlarm(Date.now());
    else if (typeof this.earliestDue === "number") await this.ctx.storage.setAlarm(Math.max(this.earliestDue, Date.now()));
    else await this.ctx.storage.deleteAlarm();
  }

  /** Batches until the stream is drained (false) or the time budget is spent (true: more may wait). */
  private async loop(config: Config, name: string, type: Channel): Promise<boolean> {
    const redis = openRedis(config);
    const db = openDatabase(config);
    const deadline = Date.now() + config.QUEUE_TIME_BUDGET_MS;
    let carry: Carry = { ack: [], result: null };
    try {
      for (;;) {
        const read = Date.now() < deadline ? config.QUEUE_BATCH_SIZE : 0;
        const step = await workerStep(redis, this.stepInput(name, type, carry, read, false));
        carry = { ack: [], result: null };
        if (step.earliestDue !== undefined) this.earliestDue = step.earliestDue;
        if (read === 0) return true;
        if (step.source === ">") this.recheckPending = false;
        if (step.entries.length === 0) return false;

        // A malformed entry (no data, not JSON, not a UUID) is acknowledged and dropped, never retried.
        const ids = [...new Set(step.entries.map((e) => e.messageId).filter((id): id is string => id !== null && UUID.test(id)))];
        const result = await processClaimed(config, db, await claim(db, ids));
        this.counters.batches++;
        this.counters.processed += result.outcomes.length;
        for (const o of result.outcomes) recordProcessing(o.type, o.providerName, o.status === "sent" ? "success" : "error", o.durationMs / 1000);
        carry = { ack: step.entries.map((e) => e.entryId), result };

        // A short read means the stream was drained when we read it; a doorbell tells us otherwise.
        if (step.entries.length < config.QUEUE_BATCH_SIZE && step.source === ">") {
          if (!this.rung) {
            const flush = await workerStep(redis, this.stepInput(name, type, carry, 0, true));
            if (flush.earliestDue !== undefined) this.earliestDue = flush.earliestDue;
            return false;
          }
          this.rung = false;
          await new Promise((r) => setTimeout(r, GATHER_MS));
        }
      }
    } finally {
      await db.end();
    }
  }

  private stepInput(name: string, type: Channel, carry: Carry, count: number, final: boolean): StepInput {
    const now = Date.now();
    const outcomes = carry.result?.outcomes ?? [];
    this.unreported.processed += outcomes.filter((o) => o.status === "sent").length;
    this.unreported.failed += outcomes.filter((o) => o.status === "failed").length;
    // Heartbeat and counters ride along at most every few seconds, and on a run's last step.
    const report = final || now - this.lastHeartbeat >= HEARTBEAT_EVERY_MS;
    const counts = report ? this.unreported : { processed: 0, failed: 0 };
    if (report) {
      this.lastHeartbeat = now;
      this.unreported = { processed: 0, failed: 0 };
    }
    // Due retries move into the stream when one is known to be due, or when we do not know.
    const moveDue = count > 0 && (this.earliestDue === undefined || (this.earliestDue !== null && this.earliestDue <= now));
    return {
      type,
      consumer: name,
      count,
      ack: carry.ack,
      retries: carry.result?.retries.map((r) => ({ member: r.member, dueAt: r.dueAt })) ?? [],
      deadLetters:
        carry.result?.deadLetters.map((d) =>
          JSON.stringify({ message_id: d.id, type: d.type, error_class: d.errorClass, error_code: d.errorCode, at: new Date(now).toISOString() }),
        ) ?? [],
      processed: counts.processed,
      failed: counts.failed,
      readPendingFirst: count > 0 && this.recheckPending,
      heartbeat: report,
      moveDue,
      wantEarliest: this.earliestDue === undefined,
    };
  }
}

type Carry = { ack: string[]; result: BatchResult | null };
