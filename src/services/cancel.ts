// Canceling an outbound message that has not been handed to its provider (issue 15 §2).
//
// One conditional UPDATE decides: the row moves to `canceled` only while its status is one the
// worker has not claimed (scheduled, pending, queued, retry). The worker's claim is itself one
// conditional update from those statuses to `sending` (src/queue/processing.ts `claim`), so when
// the two race, Postgres' row lock orders them and the loser's condition no longer holds: either
// the message is canceled and never claimed (a stream entry or alarm that fires later finds it
// canceled and does nothing), or it was claimed and the cancel answers 409 with its status.
//
// A `retry` whose last attempt may have reached the provider (ambiguous_attempt) is not canceled:
// it may already have been sent, and a cancel must mean "never sent".
import { sql } from "drizzle-orm";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { uuidv7 } from "../ids";
import type { Channel } from "../validation/address";
import { messageNotFound } from "./messages";
import { recordMessage } from "./metrics";
import { toMessage, type Message, type Row } from "./representation";
import { CANCELABLE } from "./status";

export type CancelResult = { kind: "canceled"; message: Message } | { kind: "refused"; status: string; reason: "status" | "ambiguous_attempt" };

const cancelable = sql.raw(CANCELABLE.map((s) => `'${s}'`).join(", "));

export async function cancelMessage(deps: Deps, id: string): Promise<CancelResult> {
  const rows = await deps.db().run<Row>(sql`
    with upd as (
      update messages m set status = 'canceled', next_attempt_at = null, updated_at = now()
       where m.id = ${id} and m.direction = 'outbound' and m.status in (${cancelable}) and not m.ambiguous_attempt
      returning m.*),
    ev as (
      insert into message_events (id, message_id, type, data)
      select ${uuidv7()}::uuid, upd.id, 'canceled', jsonb_build_object('source', 'api', 'send_at', upd.send_at) from upd)
      -- HOOK(message.canceled): a status-webhook outbox row for this event belongs in this statement,
      -- next to the timeline event, so that it commits with the cancel (see onMessageCanceled).
    select true as canceled, upd.* from upd`);
  if (rows[0]) {
    const message = toMessage(rows[0]);
    recordMessage({ direction: "outbound", type: message.type as Channel, provider: message.provider, status: "canceled" });
    return { kind: "canceled", message };
  }
  // Not canceled: say why, from the row as it is now (after the racing claim, if there was one).
  const [row] = await deps.db().run<Row>(sql`select status, ambiguous_attempt from messages where id = ${id}`);
  if (!row) throw messageNotFound();
  const status = String(row.status);
  const reason = (CANCELABLE as readonly string[]).includes(status) && row.ambiguous_attempt ? "ambiguous_attempt" : "status";
  return { kind: "refused", status, reason };
}

/**
 * Called after a cancel committed. The hook point for `message.canceled` status webhooks: the
 * emitter adds its delivery here (or, for an outbox, in the statement above at HOOK).
 */
export async function onMessageCanceled(_deps: Deps, _message: Message): Promise<void> {}

export function notCancelable(status: string, reason: "status" | "ambiguous_attempt"): AppError {
  const message =
    reason === "ambiguous_attempt"
      ? `Cannot cancel message with status: ${status}; its last attempt may have reached the provider`
      : `Cannot cancel message with status: ${status}`;
  return new AppError(409, "not_cancelable", message, { status });
}
