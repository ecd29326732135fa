// Inbound messages from providers (Twilio SMS/MMS, SendGrid Inbound Parse), each stored by ONE
// statement, so that the dedupe row in processed_webhook_events commits together with its effect or
// not at all: a delivery that failed (5xx) is processed again on retry, and of two concurrent
// duplicates the second waits on the dedupe key and then finds it taken. STOP/START keywords change
// the sender's opt-outs in the same statement.
import { sql, type SQL } from "drizzle-orm";
import { sqlState } from "../db/client";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import { smsSegments } from "../validation/segments";
import type { InboundInput } from "../webhooks/parsers";
import { directKey } from "./conversation-keys";
import { recordMessage } from "./metrics";
import { emitWebhooksSql } from "./outbound-webhooks";
import type { Row } from "./representation";

/** Dedupe keys are namespaced by kind: a test payload's id must not collide with an event id of another kind. */
export const dedupeKey = (kind: "inbound_message" | "status_callback" | "event", key: string) => `${kind}:${key}`;

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
export async function receiveInbound(deps: Deps, input: InboundInput, id: string = uuidv7()): Promise<InboundResult> {
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
                              body, attachments, metadata, segments, delivered_at, email)
        select ${id}, conv.id, ${input.provider}, ${input.providerMessageId}, 'inbound', 'delivered', ${input.type}, ${input.from}, ${input.to},
               ${input.body}, ${textArray(input.attachments)}, ${json(input.metadata)}, ${segments}, now(), ${input.email ? json(input.email) : null}
          from conv
        returning id, conversation_id, from_address, to_address, to_jsonb(messages.*) as row),
      ev as (
        insert into message_events (id, message_id, type, data)
        select e.id, msg.id, e.type, e.data from msg, (values ${sql.join(events, sql`, `)}) as e(id, type, data)),
      -- the API user's message.received webhooks, written with the message
      hooks as (${emitWebhooksSql(sql`select row as msg, 'message.received' as event_type from msg`)})
      ${optOutCte(input)}
      select id, conversation_id, (select webhooks from hooks) as webhooks from msg`);
  } catch (error) {
    // The provider message id is already stored under another dedupe key (e.g. an outbound
    // message with that id): the statement rolled back whole, so this is a duplicate, not a 500.
    if (sqlState(error) === "23505") return existingInbound(deps, input);
    throw error;
  }
  const row = rows[0];
  if (row) {
    recordMessage({ direction: "inbound", type: input.type, provider: input.provider, status: "delivered" });
    return { status: "success", kind: "inbound_message", message_id: String(row.id), conversation_id: String(row.conversation_id) };
  }
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

