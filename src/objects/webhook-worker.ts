// The WebhookWorker Durable Object (one, named `webhooks:0`): delivers the API user's status
// webhooks from the outbox in Postgres (src/services/outbound-webhooks.ts). Like the QueueWorker it
// sleeps without an alarm until a doorbell (`wake`) rings: the code that committed a status change
// rings it, and the sweep does after activity in case a doorbell was lost. A run delivers batch by
// batch within QUEUE_TIME_BUDGET_MS, then sets its alarm to the earliest due retry, or sleeps.
//
// Crash safety: Postgres holds every event and its lease (a claimed event's due time is moved past
// the attempt's timeout), and the alarm is armed for that lease before any attempt, so an evicted
// or crashed run is picked up by the alarm and the lapsed events are attempted again, with the same
// webhook-id.
import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../config";
import { openDatabase } from "../db/client";
import { errorFields, log } from "../log";
import { deliverBatch, nextDue } from "../services/outbound-webhooks";

const ERROR_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export interface WebhookWorkerStats {
  running: boolean;
  runs: number;
  attempted: number;
  lastError: string | null;
  nextAlarmAt: string | null;
}

export class WebhookWorker extends DurableObject<Env> {
  private running: Promise<void> | null = null;
  private rung = false;
  private consecutiveErrors = 0;
  private counters = { runs: 0, attempted: 0, lastError: null as string | null };

  /** The doorbell: a run now, unless one is running (which then looks again before it sleeps). */
  async wake(): Promise<void> {
    if (this.running) {
      this.rung = true;
      return;
    }
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > Date.now()) await this.ctx.storage.setAlarm(Date.now());
  }

  async stats(): Promise<WebhookWorkerStats> {
    const alarm = await this.ctx.storage.getAlarm();
    return { running: this.running !== null, ...this.counters, nextAlarmAt: alarm === null ? null : new Date(alarm).toISOString() };
  }

  /** Tests and tools: one run now, to its end. */
  async drain(): Promise<WebhookWorkerStats> {
    if (this.running) await this.running;
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
    const config = loadConfig(this.env);
    const db = openDatabase(config);
    this.counters.runs++;
    const deadline = Date.now() + config.QUEUE_TIME_BUDGET_MS;
    try {
      let next: number | null;
      for (;;) {
        this.rung = false;
        // The backstop while attempts are in flight: if this run dies, the alarm finds the lapsed leases.
        await this.ctx.storage.setAlarm(Date.now() + config.WEBHOOK_TIMEOUT_MS + 31_000);
        const attempted = await deliverBatch(db, config);
        this.counters.attempted += attempted;
        if (Date.now() >= deadline) {
          next = Date.now();
          break;
        }
        if (attempted > 0 || this.rung) continue;
        next = await nextDue(db);
        break;
      }
      this.consecutiveErrors = 0;
      this.counters.lastError = null;
      if (this.rung) next = Date.now();
      if (next === null) await this.ctx.storage.deleteAlarm();
      else await this.ctx.storage.setAlarm(Math.max(next, Date.now()));
    } catch (error) {
      this.consecutiveErrors++;
      this.counters.lastError = error instanceof Error ? error.message : String(error);
      const delay = ERROR_BACKOFF_MS[Math.min(this.consecutiveErrors, ERROR_BACKOFF_MS.length) - 1]!;
      log("error", "webhook_worker_run_failed", { retry_in_ms: delay, ...errorFields(error) });
      await this.ctx.storage.setAlarm(Date.now() + delay);
    } finally {
      await db.end();
    }
  }
}
