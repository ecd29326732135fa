// Storing an outbound message (DESIGN.md §2): one Postgres statement files it into its
// conversation and inserts it `pending` with its first events. Handing it to the pipeline is
// delivery.ts's job.
import { sql, type SQL } from "drizzle-orm";
import { validationError } from "../errors";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import type { SendInput } from "../validation/messages";
import { smsSegments } from "../validation/segments";
import { directKey } from "./conversation-keys";
import { toMessage, type Message, type Row } from "./representation";

export type SendSource = "api" | "legacy";

const json = (value: unknown) => sql`${JSON.stringify(value)}::jsonb`;
const textArray = (values: string[]) => sql`array(select jsonb_array_elements_text(${JSON.stringify(values)}::jsonb))`;

/** The CTE `conv(id)`: the conversation the new message joins, its counters already bumped. */
function conversationCte(input: SendInput): SQL {
  if (input.parentId) {
    return sql`conv as (
      update conversations c
         set message_count = c.message_count + 1,
             last_message_at = greatest(c.last_message_at, now()),
             status = 'active', updated_at = now()
        from messages p
       where p.id = ${input.parentId} and c.id = p.conversation_id
      returning c.id)`;
  }
  if (input.conversationType === "thread") {
    return sql`conv as (
      insert into conversations (id, participant_from, participant_to, channel_type, type, status, last_message_at, message_count, metadata)
      values (${uuidv7()}, ${input.from}, ${input.to}, ${input.type}, 'thread', 'active', now(), 1, ${json(input.metadata)})
      returning id)`;
  }
  return sql`conv as (
    insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, status, last_message_at, message_count)
    values (${uuidv7()}, ${input.from}, ${input.to}, ${input.type}, 'direct', ${directKey(input.type, input.from, input.to)}, 'active', now(), 1)
    on conflict (direct_key) where type = 'direct' do update
       set message_count = conversations.message_count + 1,
           last_message_at = greatest(conversations.last_message_at, excluded.last_message_at),
           status = 'active', updated_at = now()
    returning id)`;
}

export interface SendOptions {
  source: SendSource;
  /** async mode records `enqueued` in the same statement; sync mode never enqueues */
  enqueue: boolean;
}

/** One round trip: conversation get-or-create + message insert + its first events. */
export async function storeOutbound(deps: Deps, input: SendInput, options: SendOptions): Promise<Message> {
  const id = uuidv7();
  const provider = input.type === "email" ? "sendgrid" : "twilio";
  const segments = input.type === "sms" ? smsSegments(input.body) : null;
  const events: { type: string; data: unknown }[] = [{ type: "created", data: { source: options.source } }];
  if (options.enqueue) events.push({ type: "enqueued", data: { queue: input.type, reason: "initial" } });
  const eventRows = sql.join(
    events.map((e) => sql`(${uuidv7()}::uuid, ${e.type}, ${JSON.stringify(e.data)}::jsonb)`),
    sql`, `,
  );

  const rows = await deps.db().run<Row>(sql`
    with ${conversationCte(input)},
    msg as (
      insert into messages (id, conversation_id, parent_id, provider, direction, status, type, from_address, to_address, body, attachments, metadata, segments)
      select ${id}, conv.id, ${input.parentId}, ${provider}, 'outbound', 'pending', ${input.type}, ${input.from}, ${input.to},
             ${input.body}, ${textArray(input.attachments)}, ${json(input.metadata)}, ${segments}
        from conv
      returning *),
    ev as (
      insert into message_events (id, message_id, type, data)
      select e.id, msg.id, e.type, e.data from msg, (values ${eventRows}) as e(id, type, data))
    select * from msg`);
  const row = rows[0];
  if (!row) throw validationError([{ path: "body.parent_id", message: `Parent message not found: ${input.parentId}` }]);
  return toMessage(row);
}
