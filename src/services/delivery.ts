// Handing a stored message to the pipeline. Async mode: after commit, one XADD, then the doorbell
// off the response path; an XADD failure still answers (the row is durable) and the sweep
// enqueues it later (invariant 1). Sync mode: claim, send and record inline, never enqueue
// (invariant 9); a failed inline attempt is scheduled once for the worker.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import { openDatabase } from "../db/client";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { errorFields, log } from "../log";
import { ringDoorbell } from "../queue/doorbell";
import { claim, processClaimed } from "../queue/processing";
import { enqueue, requeue, scheduleFollowUps } from "../queue/streams";
import type { Channel } from "../validation/address";
import { getMessage } from "./messages";
import type { Message } from "./representation";

export interface Delivery {
  deps: Deps;
  env: Env;
  config: Config;
  waitUntil(work: Promise<unknown>): void;
  requestId: string;
}

function ring(d: Delivery, type: Channel, messageId: string, recheck = false) {
  d.waitUntil(
    ringDoorbell(d.env, d.config, type, messageId, recheck).catch((error: unknown) =>
      log("warn", "doorbell_failed", { request_id: d.requestId, message_id: messageId, ...errorFields(error) }),
    ),
  );
}

async function recordEnqueueFailure(config: Config, messageId: string, error: unknown) {
  // Its own connection: the request's pool is closed as the response goes out.
  const db = openDatabase(config);
  try {
    await db.run(sql`insert into message_events (id, message_id, type, data)
      values (${uuidv7()}, ${messageId}, 'enqueue_failed', ${JSON.stringify({ error: error instanceof Error ? error.message : String(error), will_retry: "sweep" })}::jsonb)`);
  } catch (recordError) {
    log("error", "enqueue_failure_not_recorded", { message_id: messageId, ...errorFields(recordError) });
  } finally {
    await db.end();
  }
}

/** One attempt inside the request; returns the message as it stands afterwards. */
export async function processInline(d: Delivery, messageId: string): Promise<Message> {
  const db = d.deps.db();
  const claimed = await claim(db, [messageId]);
  if (claimed.length > 0) {
    const result = await processClaimed(d.config, db, claimed);
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
 * in the request instead. A failed write is logged and recorded; the sweep finds the message later.
 */
async function handOver(d: Delivery, message: Message, write: () => Promise<unknown>, inline: boolean): Promise<Message> {
  try {
    await write();
  } catch (error) {
    log("error", "enqueue_failed", { request_id: d.requestId, message_id: message.id, ...errorFields(error) });
    if (!inline) {
      d.waitUntil(recordEnqueueFailure(d.config, message.id, error));
      return message;
    }
  }
  if (inline) return processInline(d, message.id);
  ring(d, message.type as Channel, message.id);
  return message;
}

/** A newly stored message: enqueue (async) or attempt inline (sync). */
export function deliverNew(d: Delivery, message: Message): Promise<Message> {
  if (d.config.SYNC_MESSAGE_PROCESSING) return processInline(d, message.id);
  return handOver(d, message, () => enqueue(d.deps.redis(), message.type as Channel, message.id, 0), false);
}

/** A message reset to pending by a retry request or a redrive: its stale retry schedule goes too. */
export function deliverAgain(d: Delivery, message: Message, staleRetryMember: string | null): Promise<Message> {
  const inline = d.config.SYNC_MESSAGE_PROCESSING;
  return handOver(d, message, () => requeue(d.deps.redis(), message.type as Channel, message.id, staleRetryMember, !inline), inline);
}
