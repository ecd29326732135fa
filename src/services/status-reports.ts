// What providers report about our outbound messages: Twilio status callbacks and SendGrid Event
// Webhook batches. A delivery, whatever the number of reports it carries, is ONE statement (the
// `apply_status_reports` function, migrations/0004): each report locks its message, claims its
// dedupe key and applies the forward-only rule in order, and the dedupe rows commit with their
// effects or not at all, so a delivery that failed (5xx) is processed again on the provider's retry.
import { sql } from "drizzle-orm";
import type { Deps } from "../deps";
import { UUID, isPlainObject } from "../validation/common";
import type { Channel } from "../validation/address";
import type { TwilioStatusInput, WebhookProvider } from "../webhooks/parsers";
import { dedupeKey } from "./inbound";
import { recordMessage } from "./metrics";
import { ALLOWED_MOVES, type MessageStatus } from "./status";
import { suppressFromEvents } from "./suppressions";

type Reason = "out_of_order" | "no_status_change" | "unknown_status";

/** One report as the statement takes it (see the function's header for the fields). */
interface StatusReport {
  provider: WebhookProvider;
  kind: "status_callback" | "events";
  /** dedupe key within the provider, already namespaced */
  key: string;
  provider_status: string;
  provider_event_id: string;
  /** null: no status to move to; recorded with `no_target_reason` */
  target: MessageStatus | null;
  no_target_reason: Reason;
  error_code: string | null;
  error_message: string | null;
  /** provider event time for `delivered_at`, when known */
  event_time: string | null;
  message_id: string | null;
  provider_ids: string[];
  id_only: boolean;
}

export type ReportOutcome =
  | { outcome: "unmatched" }
  | { outcome: "duplicate"; messageId: string }
  | { outcome: "applied"; messageId: string }
  | { outcome: "ignored"; messageId: string; reason: Reason };

const ALLOWED = JSON.stringify(Object.entries(ALLOWED_MOVES).flatMap(([from, targets]) => targets.map((to) => ({ from, to }))));

/**
 * Applies a delivery's reports in one statement, in the order the provider sent them (which message
 * a report names is only known once it is matched), and returns their outcomes in that order.
 */
async function applyReports(deps: Deps, reports: StatusReport[]): Promise<ReportOutcome[]> {
  if (reports.length === 0) return [];
  const rows = await deps.db().run<{ idx: number; message_id: string | null; outcome: string; reason: string | null; to_status: string | null; message_type: string | null }>(
    sql`select * from apply_status_reports(${JSON.stringify(reports)}::jsonb, ${ALLOWED}::jsonb)`,
  );
  const outcomes: ReportOutcome[] = new Array(reports.length);
  for (const row of rows) {
    const report = reports[row.idx]!;
    const index = row.idx;
    if (row.outcome === "applied" && row.to_status) {
      recordMessage({ direction: "outbound", type: row.message_type as Channel, provider: report.provider, status: row.to_status as MessageStatus });
    }
    outcomes[index] =
      row.outcome === "unmatched"
        ? { outcome: "unmatched" }
        : row.outcome === "ignored"
          ? { outcome: "ignored", messageId: row.message_id!, reason: row.reason as Reason }
          : { outcome: row.outcome as "applied" | "duplicate", messageId: row.message_id! };
  }
  return outcomes;
}

// --- Twilio status callbacks

const TWILIO_TARGETS: Record<string, MessageStatus> = {
  accepted: "queued",
  scheduled: "queued",
  queued: "queued",
  sending: "sending",
  sent: "sent",
  delivered: "delivered",
  read: "delivered",
  undelivered: "undelivered",
  failed: "failed",
  canceled: "failed",
};

export interface CallbackResult {
  status: "success" | "duplicate" | "ignored";
  kind: "status_callback";
  message_id: string | null;
  reason?: Reason | "unmatched";
}

function toCallbackResult(outcome: ReportOutcome): CallbackResult {
  switch (outcome.outcome) {
    case "unmatched":
      return { status: "ignored", kind: "status_callback", message_id: null, reason: "unmatched" };
    case "duplicate":
      return { status: "duplicate", kind: "status_callback", message_id: outcome.messageId };
    case "applied":
      return { status: "success", kind: "status_callback", message_id: outcome.messageId };
    case "ignored":
      return { status: "ignored", kind: "status_callback", message_id: outcome.messageId, reason: outcome.reason };
  }
}

export async function applyTwilioStatus(deps: Deps, input: TwilioStatusInput): Promise<CallbackResult> {
  const status = input.providerStatus.toLowerCase();
  const target = TWILIO_TARGETS[status] ?? null;
  const failing = target === "undelivered" || target === "failed";
  // With our id in the callback URL, match on it (the stored provider id, if any, must agree);
  // otherwise by the SID. A message_id that is not a UUID names no message of ours.
  if (input.messageId !== null && !UUID.test(input.messageId)) return toCallbackResult({ outcome: "unmatched" });
  const [outcome] = await applyReports(deps, [
    {
      provider: "twilio",
      kind: "status_callback",
      key: dedupeKey("status_callback", `${input.messageSid}:${input.providerStatus}`),
      provider_status: input.providerStatus,
      provider_event_id: `${input.messageSid}:${input.providerStatus}`,
      target,
      no_target_reason: "unknown_status",
      // Without an ErrorCode the status itself is the most specific code there is.
      error_code: failing ? (input.errorCode ?? status) : null,
      error_message: failing ? (input.errorMessage ?? (input.errorCode ? `Twilio error ${input.errorCode}` : `Twilio reported ${status}`)) : null,
      event_time: null,
      message_id: input.messageId?.toLowerCase() ?? null,
      provider_ids: [input.messageSid],
      id_only: input.messageId !== null,
    },
  ]);
  return toCallbackResult(outcome!);
}

// --- SendGrid Event Webhook

export interface EventsResult {
  status: "success";
  kind: "events";
  received: number;
  applied: number;
  duplicates: number;
  unmatched: number;
  skipped: number;
}

const SENDGRID_TARGETS: Record<string, MessageStatus> = {
  processed: "sent",
  deferred: "sent",
  delivered: "delivered",
  bounce: "undelivered",
  dropped: "failed",
};

const nonEmptyString = (value: unknown): value is string => typeof value === "string" && value.trim() !== "";
const scalarText = (value: unknown): string | null =>
  nonEmptyString(value) ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : null;

/** `P.filter0.123` may be our `P` or (unusually) `P.filter0`: every prefix ending before a dot. */
function sgMessageIdCandidates(sgMessageId: string): string[] {
  const candidates = [sgMessageId];
  for (let i = sgMessageId.indexOf("."); i > 0; i = sgMessageId.indexOf(".", i + 1)) candidates.push(sgMessageId.slice(0, i));
  return candidates;
}

function eventTime(value: unknown): string | null {
  const seconds = typeof value === "number" ? value : typeof value === "string" && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return null;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** One event as a report, or why it is not one: our id (custom_args) first, then SendGrid's message id. */
function sendgridReport(element: unknown): StatusReport | "skipped" | "unmatched" {
  if (!isPlainObject(element) || !nonEmptyString(element.event) || scalarText(element.sg_event_id) === null) return "skipped";
  const customArgs = isPlainObject(element.custom_args) ? element.custom_args : {};
  const ourId = [element.message_id, customArgs.message_id].find((v): v is string => typeof v === "string" && UUID.test(v))?.toLowerCase() ?? null;
  const sgMessageId = nonEmptyString(element.sg_message_id) ? element.sg_message_id.trim() : null;
  if (!ourId && !sgMessageId) return "unmatched";
  const event = element.event.trim();
  const eventId = scalarText(element.sg_event_id)!;
  const target = SENDGRID_TARGETS[event.toLowerCase()] ?? null;
  const reason = scalarText(element.reason) ?? scalarText(element.response) ?? event;
  return {
    provider: "sendgrid",
    kind: "events",
    key: dedupeKey("event", eventId),
    provider_status: event,
    provider_event_id: eventId,
    target,
    no_target_reason: "no_status_change",
    error_code: target === "undelivered" ? (scalarText(element.status) ?? scalarText(element.type) ?? "bounce") : target === "failed" ? "dropped" : null,
    error_message: target === "undelivered" || target === "failed" ? reason : null,
    event_time: eventTime(element.timestamp),
    message_id: ourId,
    provider_ids: sgMessageId ? sgMessageIdCandidates(sgMessageId) : [],
    id_only: false,
  };
}

/** A whole batch in one statement: after a 5xx, SendGrid's retry finds the events already done deduped on `sg_event_id`. */
export async function applySendgridEvents(deps: Deps, elements: unknown[]): Promise<EventsResult> {
  const result: EventsResult = { status: "success", kind: "events", received: elements.length, applied: 0, duplicates: 0, unmatched: 0, skipped: 0 };
  // Bounces, drops, spam reports and unsubscribes suppress the address (issue 15 §3), whether or
  // not the event matches a message of ours: SendGrid suppresses it for the whole account.
  await suppressFromEvents(deps, elements);
  const reports: StatusReport[] = [];
  for (const element of elements) {
    const report = sendgridReport(element);
    if (report === "skipped") result.skipped++;
    else if (report === "unmatched") result.unmatched++;
    else reports.push(report);
  }
  for (const outcome of await applyReports(deps, reports)) {
    if (outcome.outcome === "unmatched") result.unmatched++;
    else if (outcome.outcome === "duplicate") result.duplicates++;
    else if (outcome.outcome === "applied") result.applied++;
  }
  return result;
}
