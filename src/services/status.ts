// The status lifecycle (docs/api.md): statuses only move forward. `held` is the worker's: a message
// whose earlier attempt may or may not have reached the provider, and which no lookup could settle;
// it is neither resent nor called sent until a status callback or an operator decides.
//
// `scheduled` waits for its send_at: it leaves only by the worker's claim at that time or by a
// cancel (POST /cancel), never by PATCH or a provider report, so it has no allowed moves here.
// `canceled` is final: a canceled message is never sent.
export type MessageStatus =
  | "pending"
  | "queued"
  | "sending"
  | "sent"
  | "delivered"
  | "undelivered"
  | "failed"
  | "retry"
  | "held"
  | "scheduled"
  | "canceled";

const FINAL = ["delivered", "undelivered", "failed"] as const;

export const ALLOWED_MOVES: Record<MessageStatus, readonly MessageStatus[]> = {
  pending: ["queued", "sending", "sent", ...FINAL, "retry"],
  queued: ["sending", "sent", ...FINAL, "retry"],
  sending: ["sent", ...FINAL, "retry", "held"],
  retry: ["sending", "sent", ...FINAL],
  held: ["sent", ...FINAL],
  sent: [...FINAL],
  delivered: [],
  undelivered: [],
  failed: [],
  scheduled: [],
  canceled: [],
};

export function canMove(from: MessageStatus, to: MessageStatus): boolean {
  return ALLOWED_MOVES[from].includes(to);
}

export function isTerminal(status: MessageStatus): boolean {
  return status !== "scheduled" && ALLOWED_MOVES[status].length === 0;
}

/** Statuses from which the worker may claim a message for a provider call (only a won claim sends). */
export const CLAIMABLE: readonly MessageStatus[] = ["pending", "queued", "retry"];

/**
 * Statuses a cancel moves to `canceled`: nothing has been handed to the provider yet. The cancel
 * and the worker's claim are each one conditional statement on the row, so exactly one wins.
 */
export const CANCELABLE: readonly MessageStatus[] = ["scheduled", "pending", "queued", "retry"];

/** What PATCH /status may set: every status but the worker's own `held`, `scheduled` (a send_at) and `canceled` (POST /cancel). */
export const PATCHABLE_STATUSES = ["pending", "queued", "sending", "sent", "delivered", "undelivered", "failed", "retry"] as const satisfies readonly MessageStatus[];
