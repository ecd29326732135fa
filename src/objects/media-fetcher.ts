// Copies one inbound MMS's media into R2 (src/services/media.ts). One instance per message, named
// by its id: `start` stores the job and sets an alarm; each alarm tries every item not yet copied,
// records the tries on the message's timeline and, while items remain and attempts are left, sets
// the next alarm with backoff. The job lives in the object's storage, so an eviction, a deploy or a
// crash mid-fetch loses nothing: the alarm fires again (Cloudflare retries a throwing alarm too).
import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../config";
import { openDatabase } from "../db/client";
import { errorFields, log } from "../log";
import { backoffSeconds } from "../queue/backoff";
import { copyMedia, fetchEvent, recordMediaEvents, type MediaItem } from "../services/media";

interface Job {
  messageId: string;
  items: (MediaItem & { state: "pending" | "stored" | "failed" })[];
  attempt: number;
  /** timeline events not yet written (the database was unreachable): written first next time */
  unrecorded: Record<string, unknown>[];
}

export class MediaFetcher extends DurableObject<Env> {
  /** Idempotent: a job already known (running or finished) is left as it is. */
  async start(messageId: string, items: MediaItem[]): Promise<void> {
    if (await this.ctx.storage.get<Job>("job")) return;
    const job: Job = { messageId, items: items.map((i) => ({ ...i, state: "pending" })), attempt: 0, unrecorded: [] };
    await this.ctx.storage.put("job", job);
    await this.ctx.storage.setAlarm(Date.now());
  }

  /** The job as it stands (tests and operators). */
  async status(): Promise<Job | null> {
    return (await this.ctx.storage.get<Job>("job")) ?? null;
  }

  override async alarm(): Promise<void> {
    const job = await this.ctx.storage.get<Job>("job");
    if (!job) return;
    const config = loadConfig(this.env);
    const pending = job.items.filter((i) => i.state === "pending");
    let next: number | null = null;
    if (pending.length > 0) {
      job.attempt += 1;
      const last = job.attempt >= config.MEDIA_FETCH_MAX_ATTEMPTS;
      const due = Date.now() + backoffSeconds(job.attempt, { baseSeconds: config.MEDIA_FETCH_RETRY_DELAY, maxSeconds: 3600 }) * 1000;
      for (const item of pending) {
        const result = await copyMedia(config, this.env.MEDIA, job.messageId, item);
        if (result.outcome === "stored") item.state = "stored";
        else if (result.outcome === "failed" || last) item.state = "failed";
        else next = due;
        job.unrecorded.push(fetchEvent(item, job.attempt, result, result.outcome === "retry" && !last ? due : null));
      }
      // The progress is kept before anything else can fail: a stored item is never fetched again.
      await this.ctx.storage.put("job", job);
    }
    if (job.unrecorded.length > 0) {
      const db = openDatabase(config);
      try {
        await recordMediaEvents(db, job.messageId, job.unrecorded);
        job.unrecorded = [];
        await this.ctx.storage.put("job", job);
      } catch (error) {
        log("warn", "media_events_not_recorded", { message_id: job.messageId, ...errorFields(error) });
        next = Math.min(next ?? Infinity, Date.now() + config.MEDIA_FETCH_RETRY_DELAY * 1000);
      } finally {
        await db.end();
      }
    }
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
