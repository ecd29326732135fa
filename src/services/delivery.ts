// Handing a stored message to the pipeline. Async mode: the 201 goes out after the commit; the XADD
// and the doorbell follow off the response path (the row is durable; the stream entry is only the
// worker's wake-up, so the client does not wait a Redis round trip for it). An XADD failure hands
// the message id to its shard's Durable Object, which keeps it in its own storage and writes the
// entry as soon as Redis answers; the sweep's slow safety pass covers a Worker that died between
// the commit and the XADD.
// Sync mode: claim, send and record inline, never enqueue; a failed inline attempt is scheduled
// once for the worker. Every step is bounded by the request's deadline.
// Scheduled (a send_at): handed to its shard's Durable Object, which keeps it in its storage and
// arms its alarm for it, in both modes; if that handover fails the sweep's database pass finds it
// once overdue.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import { openDatabase } from "../db/client";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { errorFields, log } from "../log";
import { ringDoorbell, shardStub } from "../queue/doorbell";
import { claim, processClaimed } from "../queue/processing";
import { enqueue, requeue, scheduleFollowUps } from "../queue/streams";
import type { Channel } from "../validation/address";
import { getMessage } from "./messages";
import { ringWebhookWorker } from "./outbound-webhooks";
import type { Message } from "./representation";

export interface Delivery {
  deps: Deps;
  env: Env;
  config: Config;
  waitUntil(work: Promise<unknown>): void;
  requestId: string;
  /** epoch ms by which the request must be answered */
  deadline: number;
}

/** What is left of the request's budget, keeping a little for the answer itself. */
const left = (d: Delivery) => Math.max(0, d.deadline - Date.now() - 100);

function ring(d: Delivery, type: Channel, messageId: string, recheck = false) {
  d.waitUntil(
    ringDoorbell(d.env, d.config, type, messageId, recheck).catch((error: unknown) =>
      log("warn", "doorbell_failed", { request_id: d.requestId, message_id: messageId, ...errorFields(error) }),
    ),
  );
}

async function recordEnqueueFailure(config: Config, messageId: string, error: unknown, handedOver: boolean | "sweep") {
  // Its own connection: the request's is closed as the response goes out.
  const db = openDatabase(config);
  try {
    await db.run(sql`insert into message_events (id, message_id, type, data)
      values (${uuidv7()}, ${messageId}, 'enqueue_failed', ${JSON.stringify({
        error: error instanceof Error ? error.message : String(error),
        will_retry: handedOver === true ? "shard" : "sweep",
      })}::jsonb)`);
  } catch (recordError) {
    log("error", "enqueue_failure_not_recorded", { message_id: messageId, ...errorFields(recordError) });
  } finally {
    await db.end();
  }
}

/** The stream write failed: the shard keeps the id and writes the entry when Redis answers. */
async function handToShard(d: Delivery, message: Message, cause: unknown): Promise<void> {
  let handedOver = false;
  try {
    await withinBudget(shardStub(d.env, d.config, message.type as Channel, message.id).enqueueLater(message.id), left(d));
    handedOver = true;
  } catch (error) {
    log("error", "enqueue_handover_failed", { request_id: d.requestId, message_id: message.id, ...errorFields(error) });
  }
  d.waitUntil(recordEnqueueFailure(d.config, message.id, cause, handedOver));
}

function withinBudget<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => timer !== undefined && clearTimeout(timer));
}

/** One attempt inside the request; returns the message as it stands afterwards. */
export async function processInline(d: Delivery, messageId: string): Promise<Message> {
  const db = d.deps.db();
  const claimed = await claim(db, [messageId]);
  if (claimed.length > 0) {
    // The provider call gets what the request's deadline leaves after recording the outcome.
    const budget = Math.max(100, Math.min(d.config.PROVIDER_TIMEOUT_MS, left(d) - 1000));
    const result = await processClaimed({ ...d.config, PROVIDER_TIMEOUT_MS: budget }, db, claimed);
    // message.sent / message.failed may have been written with the outcome
    d.waitUntil(ringWebhookWorker(d.env));
    if (result.retries.length > 0 || result.deadLetters.length > 0) {
      try {
        await scheduleFollowUps(d.deps.redis(), result.retries, result.deadLetters);
        // The shard looks up the new earliest retry and sets its alarm; the sweep is the backstop.
        for (const r of result.retries) ring(d, r.type, messageId, true);
      } catch (error) {
        // The row says `retry` with its due time: the sweep re-enqueues it when the schedule is lost.
        log("error", "retry_schedule_failed", { request_id: d.requestId, message_id: messageId, ...errorFields(error) });
      }
    }
  }
  return getMessage(d.deps, messageId);
}

/**
 * Runs the Redis write that hands a message over, then rings its shard; with `inline`, attempts it
 * in the request instead.
 */
async function handOver(d: Delivery, message: Message, write: () => Promise<unknown>, inline: boolean): Promise<Message> {
  try {
    await write();
  } catch (error) {
    log("error", "enqueue_failed", { request_id: d.requestId, message_id: message.id, ...errorFields(error) });
    if (!inline) {
      await handToShard(d, message, error);
      return message;
    }
  }
  if (inline) return processInline(d, message.id);
  ring(d, message.type as Channel, message.id);
  return message;
}

/** A scheduled message goes to its shard, which holds it until its send_at. */
async function handToScheduler(d: Delivery, message: Message): Promise<Message> {
  const dueAt = Date.parse(message.send_at!);
  try {
    await withinBudget(shardStub(d.env, d.config, message.type as Channel, message.id).schedule(message.id, dueAt), left(d));
  } catch (error) {
    // Stored and answered 201 all the same: the sweep's database pass enqueues overdue scheduled rows.
    log("error", "schedule_handover_failed", { request_id: d.requestId, message_id: message.id, ...errorFields(error) });
    d.waitUntil(recordEnqueueFailure(d.config, message.id, error, "sweep"));
  }
  return message;
}

/** A newly stored message: scheduled (to its shard), enqueue (async) or attempt inline (sync). */
export function deliverNew(d: Delivery, message: Message): Promise<Message> {
  if (message.status === "scheduled" && message.send_at) return handToScheduler(d, message);
  if (d.config.SYNC_MESSAGE_PROCESSING) return processInline(d, message.id);
  d.waitUntil(
    handOver(d, message, () => enqueue(d.deps.redis(), message.type as Channel, message.id, 0), false).catch((error: unknown) =>
      log("error", "enqueue_handover_failed", { request_id: d.requestId, message_id: message.id, ...errorFields(error) }),
    ),
  );
  return Promise.resolve(message);
}

/** A message reset to pending by a retry request or a redrive: its stale retry schedule goes too. */
export function deliverAgain(d: Delivery, message: Message, staleRetryMember: string | null): Promise<Message> {
  const inline = d.config.SYNC_MESSAGE_PROCESSING;
  return handOver(d, message, () => requeue(d.deps.redis(), message.type as Channel, message.id, staleRetryMember, !inline), inline);
}
