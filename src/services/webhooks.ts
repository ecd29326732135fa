// What provider webhooks do to the record (API-CONTRACT §2.2-2.4, §9): inbound messages, status
// callbacks and SendGrid events, each as ONE statement so that the dedupe row in
// processed_webhook_events commits together with its effect or not at all (DESIGN.md invariant 8):
// a delivery that failed (5xx) is processed again on retry, and of two concurrent duplicates the
// second waits on the dedupe key and then finds it taken.
import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { sqlState } from "../db/client";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { smsSegments } from "../validation/segments";
import { UUID, isPlainObject } from "../validation/common";
import type { InboundInput, TwilioStatusInput, WebhookProvider } from "../webhooks/parsers";
import { directKey } from "./conversation-keys";
import { iso, type Row } from "./representation";
import { ALLOWED_MOVES, type MessageStatus } from "./status";

export type WebhookKind = "inbound_message" | "status_callback" | "events";

// Dedupe keys are namespaced by kind: the table's key is (provider, event_key), and a test
// payload's id must not collide with an event id of another kind.
const dedupeKey = (kind: WebhookKind | "event", key: string) => `${kind}:${key}`;

const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;
const textArray = (values: string[]) => sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;

// ---------------------------------------------------------------------------------------------
// Opt-out (issue 5 item 6): STOP-style keywords from a recipient block sends to them from the
// number they wrote to; START-style keywords lift the block. Twilio's default keyword sets.

const OPT_OUT_KEYWORDS = new Set(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]);
const OPT_IN_KEYWORDS = new Set(["START", "UNSTOP", "YES"]);

/** Twilio matches a message that is just the keyword: case, surrounding space and end punctuation aside. */
export function optKeyword(body: string | null): { action: "opt_out" | "opt_in"; keyword: string } | null {
  const word = (body ?? "").trim().replace(/[.!?]+$/, "").trim().toUpperCase();
  if (OPT_OUT_KEYWORDS.has(word)) return { action: "opt_out", keyword: word };
  if (OPT_IN_KEYWORDS.has(word)) return { action: "opt_in", keyword: word };
  return null;
}

function optOutCte(input: InboundInput): SQL {
  const found = input.type === "email" ? null : optKeyword(input.body);
  if (!found) return sql``;
  // `sender` is our number (the inbound `to`), `recipient` the person who wrote (the inbound `from`).
  if (found.action === "opt_out") {
    return sql`, opt as (
      insert into opt_outs (sender, recipient, keyword, message_id)
      select msg.to_address, msg.from_address, ${found.keyword}, msg.id from msg
      on conflict (sender, recipient) do update
         set keyword = excluded.keyword, message_id = excluded.message_id, created_at = now())`;
  }
  return sql`, opt as (
    delete from opt_outs o using msg where o.sender = msg.to_address and o.recipient = msg.from_address)`;
}

// ---------------------------------------------------------------------------------------------
// Inbound messages (§9.1, §9.3, §9.6, §9.7)

export interface InboundResult {
  status: "success" | "duplicate";
  kind: "inbound_message";
  message_id: string | null;
  conversation_id: string | null;
}

/**
 * One statement: claim the dedupe key, file the message into the pair's direct conversation
 * (never a thread; counters and unread bumped, reopened), insert it `delivered`, record `created`
 * and `received`, and apply an opt-out keyword. A taken key leaves every CTE empty.
 */
export async function receiveInbound(deps: Deps, input: InboundInput): Promise<InboundResult> {
  const id = uuidv7();
  const key = dedupeKey("inbound_message", input.providerMessageId);
  const events = [
    sql`(${uuidv7()}::uuid, 'created', ${json({ source: "webhook" })})`,
    sql`(${uuidv7()}::uuid, 'received', ${json({ provider: input.provider, provider_message_id: input.providerMessageId })})`,
  ];
  const segments = input.type === "sms" ? smsSegments(input.body) : null;
  let rows: Row[];
  try {
    rows = await deps.db().run<Row>(sql`
      with dedupe as (
        insert into processed_webhook_events (provider, event_key, kind, message_id)
        values (${input.provider}, ${key}, 'inbound_message', ${id})
        on conflict do nothing
        returning message_id),
      conv as (
        insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, status, last_message_at, message_count, unread_count)
        select ${uuidv7()}, ${input.from}, ${input.to}, ${input.type}, 'direct', ${directKey(input.type, input.from, input.to)}, 'active', now(), 1, 1
          from dedupe
        on conflict (direct_key) where type = 'direct' do update
           set message_count = conversations.message_count + 1,
               unread_count = conversations.unread_count + 1,
               last_message_at = greatest(conversations.last_message_at, excluded.last_message_at),
               status = 'active', updated_at = now()
        returning id),
      msg as (
        insert into messages (id, conversation_id, provider, provider_message_id, direction, status, type, from_address, to_address,
                              body, attachments, metadata, segments, delivered_at)
        select ${id}, conv.id, ${input.provider}, ${input.providerMessageId}, 'inbound', 'delivered', ${input.type}, ${input.from}, ${input.to},
               ${input.body}, ${textArray(input.attachments)}, ${json(input.metadata)}, ${segments}, now()
          from conv
        returning id, conversation_id, from_address, to_address),
      ev as (
        insert into message_events (id, message_id, type, data)
        select e.id, msg.id, e.type, e.data from msg, (values ${sql.join(events, sql`, `)}) as e(id, type, data))
      ${optOutCte(input)}
      select id, conversation_id from msg`);
  } catch (error) {
    // The provider message id is already stored under another dedupe key (e.g. an outbound
    // message with that id): the statement rolled back whole, so this is a duplicate, not a 500.
    if (sqlState(error) === "23505") return existingInbound(deps, input);
    throw error;
  }
  const row = rows[0];
  if (row) return { status: "success", kind: "inbound_message", message_id: String(row.id), conversation_id: String(row.conversation_id) };
  return existingInbound(deps, input);
}

async function existingInbound(deps: Deps, input: InboundInput): Promise<InboundResult> {
  const [row] = await deps.db().run<Row>(sql`
    select id, conversation_id from messages where provider = ${input.provider} and provider_message_id = ${input.providerMessageId}`);
  return {
    status: "duplicate",
    kind: "inbound_message",
    message_id: row ? String(row.id) : null,
    conversation_id: row ? String(row.conversation_id) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Provider status reports (Twilio callbacks §9.2, SendGrid events §9.5)

type Reason = "out_of_order" | "no_status_change" | "unknown_status";

interface StatusReport {
  provider: WebhookProvider;
  /** dedupe key within the provider, already namespaced */
  key: string;
  kind: WebhookKind;
  providerStatus: string;
  providerEventId: string;
  /** null: no status to move to; recorded with `noTargetReason` */
  target: MessageStatus | null;
  noTargetReason: Reason;
  error: { code: string; message: string } | null;
  /** provider event time for `delivered_at`, when known */
  eventTime: string | null;
  /** the outbound message this report is about */
  match: SQL;
  /** order among several matches, best first */
  preference?: SQL;
  /** when the match was by our id: the provider id to record if none is stored yet */
  providerMessageId: string | null;
}

export type ReportOutcome =
  | { outcome: "unmatched" }
  | { outcome: "duplicate"; messageId: string }
  | { outcome: "applied"; messageId: string }
  | { outcome: "ignored"; messageId: string; reason: Reason };

const ALLOWED_PAIRS = sql.raw(
  Object.entries(ALLOWED_MOVES)
    .flatMap(([from, targets]) => targets.map((to) => `('${from}', '${to}')`))
    .join(", "),
);

/**
 * One statement per report. The message row is locked first (FOR UPDATE), so reports for one
 * message apply one after another and each decides on the status the previous one left; then the
 * dedupe key is claimed; then the forward-only rule (§2.2) decides whether the status moves.
 * `callback_received` is recorded for every first-seen report, `status_changed` only when applied.
 * An unmatched report stores nothing, so a redelivery after the message appears still applies.
 */
async function applyReport(deps: Deps, report: StatusReport): Promise<ReportOutcome> {
  const target = report.target;
  const rows = await deps.db().run<Row>(sql`
    with target as (
      select id, status from messages where ${report.match}
      order by ${report.preference ? sql`${report.preference}, ` : sql``}created_at, id limit 1
      for update),
    dedupe as (
      insert into processed_webhook_events (provider, event_key, kind, message_id)
      select ${report.provider}, ${report.key}, ${report.kind}, id from target
      on conflict do nothing
      returning message_id),
    decision as (
      select t.id, t.status as from_status,
             (${target}::text is not null and t.status <> ${target}::text and (t.status, ${target}::text) in (values ${ALLOWED_PAIRS})) as applied,
             case when ${target}::text is null then ${report.noTargetReason}::text
                  when t.status = ${target}::text then 'no_status_change'
                  when (t.status, ${target}::text) in (values ${ALLOWED_PAIRS}) then null
                  else 'out_of_order' end as reason
        from target t join dedupe d on d.message_id = t.id),
    upd as (
      update messages m set
        status = ${target}::text,
        provider_message_id = coalesce(m.provider_message_id, ${report.providerMessageId}::text),
        sent_at = case when ${target}::text = 'sent' then coalesce(m.sent_at, now()) else m.sent_at end,
        delivered_at = case when ${target}::text = 'delivered' then coalesce(m.delivered_at, ${report.eventTime}::timestamptz, now()) else m.delivered_at end,
        error_code = case when ${target}::text in ('undelivered', 'failed') then ${report.error?.code ?? null}::text else m.error_code end,
        error_message = case when ${target}::text in ('undelivered', 'failed') then ${report.error?.message ?? null}::text else m.error_message end,
        updated_at = now()
        from decision d
       -- No status condition here: the row is locked by target, so from_status is current. A
       -- condition would be checked against this statement's snapshot, older than the row a
       -- waited-for lock gave target (a worker's "sent" committed meanwhile), and skip it.
       where m.id = d.id and d.applied
      returning m.id),
    ev as (
      insert into message_events (id, message_id, type, data)
      select ${uuidv7()}::uuid, d.id, 'callback_received',
             jsonb_build_object('provider', ${report.provider}::text, 'provider_status', ${report.providerStatus}::text,
                                'provider_event_id', ${report.providerEventId}::text, 'applied', d.applied, 'reason', d.reason)
        from decision d
      union all
      select ${uuidv7()}::uuid, d.id, 'status_changed',
             jsonb_build_object('from', d.from_status, 'to', ${target}::text, 'source', 'callback')
        from decision d join upd u on u.id = d.id)
    select t.id, d.applied, d.reason, (d.id is not null) as first_seen
      from target t left join decision d on d.id = t.id`);
  const row = rows[0];
  if (!row) return { outcome: "unmatched" };
  const messageId = String(row.id);
  if (!row.first_seen) return { outcome: "duplicate", messageId };
  if (row.applied) return { outcome: "applied", messageId };
  return { outcome: "ignored", messageId, reason: row.reason as Reason };
}

// --- Twilio status callbacks (§9.2)

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
  let match: SQL;
  if (input.messageId !== null) {
    if (!UUID.test(input.messageId)) return toCallbackResult({ outcome: "unmatched" });
    match = sql`id = ${input.messageId.toLowerCase()} and provider = 'twilio' and direction = 'outbound'
                and (provider_message_id is null or provider_message_id = ${input.messageSid})`;
  } else {
    match = sql`provider = 'twilio' and direction = 'outbound' and provider_message_id = ${input.messageSid}`;
  }
  const outcome = await applyReport(deps, {
    provider: "twilio",
    key: dedupeKey("status_callback", `${input.messageSid}:${input.providerStatus}`),
    kind: "status_callback",
    providerStatus: input.providerStatus,
    providerEventId: `${input.messageSid}:${input.providerStatus}`,
    target,
    noTargetReason: "unknown_status",
    // Without an ErrorCode the status itself is the most specific code there is.
    error: failing
      ? {
          code: input.errorCode ?? status,
          message: input.errorMessage ?? (input.errorCode ? `Twilio error ${input.errorCode}` : `Twilio reported ${status}`),
        }
      : null,
    eventTime: null,
    match,
    providerMessageId: input.messageId !== null ? input.messageSid : null,
  });
  return toCallbackResult(outcome);
}

// --- SendGrid Event Webhook (§9.5)

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

/** Our id (custom_args) first, then SendGrid's message id (§9.5 matching order). */
function sendgridMatch(element: Record<string, unknown>): { match: SQL; preference: SQL | undefined } | null {
  const customArgs = isPlainObject(element.custom_args) ? element.custom_args : {};
  const ourId = [element.message_id, customArgs.message_id].find((v): v is string => typeof v === "string" && UUID.test(v))?.toLowerCase() ?? null;
  const sgMessageId = nonEmptyString(element.sg_message_id) ? element.sg_message_id.trim() : null;
  if (!ourId && !sgMessageId) return null;
  const byId = ourId ? sql`id = ${ourId}::uuid` : sql`false`;
  const byProviderId = sgMessageId
    ? sql`provider_message_id in (${sql.join(sgMessageIdCandidates(sgMessageId).map((c) => sql`${c}`), sql`, `)})`
    : sql`false`;
  return {
    match: sql`provider = 'sendgrid' and direction = 'outbound' and (${byId} or ${byProviderId})`,
    preference: ourId ? sql`(${byId}) desc` : undefined,
  };
}

function eventTime(value: unknown): string | null {
  const seconds = typeof value === "number" ? value : typeof value === "string" && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return null;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * Each element on its own statement (and so its own commit): after a 5xx part-way through a
 * batch, SendGrid's retry finds the elements already done deduped on `sg_event_id`.
 */
export async function applySendgridEvents(deps: Deps, elements: unknown[]): Promise<EventsResult> {
  const result: EventsResult = { status: "success", kind: "events", received: elements.length, applied: 0, duplicates: 0, unmatched: 0, skipped: 0 };
  for (const element of elements) {
    if (!isPlainObject(element) || !nonEmptyString(element.event) || scalarText(element.sg_event_id) === null) {
      result.skipped++;
      continue;
    }
    const matching = sendgridMatch(element);
    if (!matching) {
      result.unmatched++;
      continue;
    }
    const event = element.event.trim();
    const eventId = scalarText(element.sg_event_id)!;
    const target = SENDGRID_TARGETS[event.toLowerCase()] ?? null;
    const reason = scalarText(element.reason) ?? scalarText(element.response) ?? event;
    const error =
      target === "undelivered"
        ? { code: scalarText(element.status) ?? scalarText(element.type) ?? "bounce", message: reason }
        : target === "failed"
          ? { code: "dropped", message: reason }
          : null;
    const outcome = await applyReport(deps, {
      provider: "sendgrid",
      key: dedupeKey("event", eventId),
      kind: "events",
      providerStatus: event,
      providerEventId: eventId,
      target,
      noTargetReason: "no_status_change",
      error,
      eventTime: eventTime(element.timestamp),
      ...matching,
      providerMessageId: null,
    });
    if (outcome.outcome === "unmatched") result.unmatched++;
    else if (outcome.outcome === "duplicate") result.duplicates++;
    else if (outcome.outcome === "applied") result.applied++;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Delivery log and statistics (§6.5)

/**
 * Logs one delivery that passed its signature check, and prunes the provider's rows older than
 * the window in the same statement so the table stays bounded without a separate job.
 */
export async function recordDelivery(deps: Deps, provider: WebhookProvider, kind: string, statusCode: number): Promise<void> {
  await deps.db().run(sql`
    with pruned as (delete from webhook_deliveries where provider = ${provider} and received_at < now() - interval '25 hours')
    insert into webhook_deliveries (id, provider, kind, status_code) values (${uuidv7()}, ${provider}, ${kind}, ${statusCode})`);
}

export const STATUS_PROVIDERS = ["twilio", "sendgrid", "internal", "mock"] as const;
export type StatusProvider = (typeof STATUS_PROVIDERS)[number];

export async function webhookStatus(deps: Deps, config: Config, provider: StatusProvider) {
  if (provider === "internal" || provider === "mock") {
    return {
      provider,
      status: "not_configured",
      signature_verification: "disabled",
      statistics: { total_webhooks_24h: 0, processed_webhooks_24h: 0, error_webhooks_24h: 0, last_webhook_at: null },
    };
  }
  const verifying = provider === "twilio" ? Boolean(config.TWILIO_AUTH_TOKEN) : Boolean(config.SENDGRID_WEBHOOK_PUBLIC_KEY || config.SENDGRID_PARSE_PUBLIC_KEY);
  const configured =
    provider === "twilio"
      ? Boolean(config.TWILIO_AUTH_TOKEN || config.TWILIO_ACCOUNT_SID || config.TWILIO_API_KEY_SID)
      : Boolean(config.SENDGRID_API_KEY || config.SENDGRID_WEBHOOK_PUBLIC_KEY || config.SENDGRID_PARSE_PUBLIC_KEY);
  const [row] = await deps.db().run<Row>(sql`
    select count(*)::int as total,
           count(*) filter (where status_code between 200 and 299)::int as processed,
           count(*) filter (where status_code >= 400)::int as errors,
           max(received_at) as last_at
      from webhook_deliveries
     where provider = ${provider} and received_at > now() - interval '24 hours'`);
  return {
    provider,
    status: configured ? "configured" : "not_configured",
    signature_verification: verifying ? "enabled" : "disabled",
    statistics: {
      total_webhooks_24h: Number(row?.total ?? 0),
      processed_webhooks_24h: Number(row?.processed ?? 0),
      error_webhooks_24h: Number(row?.errors ?? 0),
      last_webhook_at: iso(row?.last_at),
    },
  };
}
