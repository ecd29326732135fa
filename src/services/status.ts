// The status lifecycle (API-CONTRACT §2.2, DESIGN.md invariant 7): statuses only move forward.
export type MessageStatus = "pending" | "queued" | "sending" | "sent" | "delivered" | "undelivered" | "failed" | "retry";

const FINAL = ["delivered", "undelivered", "failed"] as const;

export const ALLOWED_MOVES: Record<MessageStatus, readonly MessageStatus[]> = {
  pending: ["queued", "sending", "sent", ...FINAL, "retry"],
  queued: ["sending", "sent", ...FINAL, "retry"],
  sending: ["sent", ...FINAL, "retry"],
  retry: ["sending", "sent", ...FINAL],
  sent: [...FINAL],
  delivered: [],
  undelivered: [],
  failed: [],
};

export function canMove(from: MessageStatus, to: MessageStatus): boolean {
  return ALLOWED_MOVES[from].includes(to);
}

export function isTerminal(status: MessageStatus): boolean {
  return ALLOWED_MOVES[status].length === 0;
}

/** Statuses from which the worker may claim a message for a provider call (invariant 2). */
export const CLAIMABLE: readonly MessageStatus[] = ["pending", "queued", "retry"];
