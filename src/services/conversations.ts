// Conversations (docs/api.md): get-or-create of direct conversations through the unique
// direct key, threads, listing, search with literal patterns, read marks.
import { sql, type SQL } from "drizzle-orm";
import { notFound } from "../errors";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import type { Channel } from "../validation/address";
import type { Page } from "../validation/common";
import { directKey } from "./conversation-keys";
import { mergeMetadata } from "./messages";
import { toConversation, toMessage, type Conversation, type Row } from "./representation";

export const conversationNotFound = () => notFound("Conversation not found");

export interface CreateConversation {
  type: "direct" | "thread";
  channelType: Channel;
  participantFrom: string;
  participantTo: string;
  title: string | null;
  metadata: Record<string, unknown>;
}

export async function createConversation(deps: Deps, input: CreateConversation): Promise<Conversation> {
  const id = uuidv7();
  const metadata = JSON.stringify(input.metadata);
  const rows =
    input.type === "thread"
      ? await deps.db().run<Row>(sql`
          insert into conversations (id, participant_from, participant_to, channel_type, type, title, metadata)
          values (${id}, ${input.participantFrom}, ${input.participantTo}, ${input.channelType}, 'thread', ${input.title}, ${metadata}::jsonb)
          returning *`)
      : await deps.db().run<Row>(sql`
          insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, title, metadata)
          values (${id}, ${input.participantFrom}, ${input.participantTo}, ${input.channelType}, 'direct',
                  ${directKey(input.channelType, input.participantFrom, input.participantTo)}, ${input.title}, ${metadata}::jsonb)
          on conflict (direct_key) where type = 'direct' do update
             set status = 'active',
                 updated_at = case when conversations.status <> 'active' then now() else conversations.updated_at end
          returning *`);
  return toConversation(rows[0]!);
}

export async function getConversation(deps: Deps, id: string, includeMessages: boolean): Promise<Conversation> {
  const [row] = await deps.db().run<Row>(sql`select * from conversations where id = ${id}`);
  if (!row) throw conversationNotFound();
  if (!includeMessages) return toConversation(row);
  const messages = await deps.db().run<Row>(sql`
    select * from messages where conversation_id = ${id} order by created_at, id limit 500`);
  return toConversation(row, messages.map(toMessage));
}

export interface ConversationFilters {
  participant?: string;
  channelType?: string;
  status?: string;
  type?: string;
}

const ORDER = sql`last_message_at desc nulls last, created_at desc, id desc`;

/** The page and the exact total in one round trip. */
async function page(deps: Deps, filtered: SQL, p: Page) {
  const rows = await deps.db().run<Row>(sql`
    with filtered as not materialized (${filtered})
    select c.*, t.total from (select count(*)::int as total from filtered) t
    left join lateral (select * from filtered order by ${ORDER} limit ${p.limit} offset ${p.offset}) c on true`);
  return {
    conversations: rows.filter((r) => r.id != null).map((r) => toConversation(r)),
    total: Number(rows[0]?.total ?? 0),
    limit: p.limit,
    offset: p.offset,
  };
}

export function listConversations(deps: Deps, filters: ConversationFilters, p: Page) {
  const parts: SQL[] = [sql`true`];
  if (filters.participant) parts.push(sql`(participant_from = ${filters.participant} or participant_to = ${filters.participant})`);
  if (filters.channelType) parts.push(sql`channel_type = ${filters.channelType}`);
  if (filters.status) parts.push(sql`status = ${filters.status}`);
  if (filters.type) parts.push(sql`type = ${filters.type}`);
  return page(deps, sql`select * from conversations where ${sql.join(parts, sql` and `)}`, p);
}

/** `%`, `_` and `\` match literally. */
export function likePattern(query: string): string {
  return `%${query.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

export function searchConversations(deps: Deps, query: string, p: Page) {
  const pattern = likePattern(query);
  return page(
    deps,
    sql`select * from conversations c
         where c.participant_from ilike ${pattern} escape '\\'
            or c.participant_to ilike ${pattern} escape '\\'
            or c.title ilike ${pattern} escape '\\'
            or exists (select 1 from messages m where m.conversation_id = c.id and m.body ilike ${pattern} escape '\\')`,
    p,
  );
}

export interface ConversationPatch {
  title?: string | null;
  status?: string;
  metadata?: Record<string, unknown>;
}

export async function updateConversation(deps: Deps, id: string, patch: ConversationPatch): Promise<Conversation> {
  return deps.db().transaction(async (tx) => {
    const found = await tx.execute(sql`select * from conversations where id = ${id} for update`);
    const row = found.rows[0] as Row | undefined;
    if (!row) throw conversationNotFound();
    if (patch.title === undefined && patch.status === undefined && patch.metadata === undefined) return toConversation(row);
    const metadata = patch.metadata ? mergeMetadata(row.metadata as Record<string, unknown>, patch.metadata) : row.metadata;
    const updated = await tx.execute(sql`
      update conversations set
        title = ${patch.title === undefined ? sql`title` : sql`${patch.title}`},
        status = ${patch.status ?? sql`status`},
        metadata = ${JSON.stringify(metadata)}::jsonb,
        updated_at = now()
      where id = ${id} returning *`);
    return toConversation(updated.rows[0] as Row);
  });
}

export async function deleteConversation(deps: Deps, id: string, hard: boolean): Promise<void> {
  const rows = hard
    ? await deps.db().run(sql`delete from conversations where id = ${id} returning id`)
    : await deps.db().run(sql`update conversations set status = 'closed', updated_at = now() where id = ${id} returning id`);
  if (rows.length === 0) throw conversationNotFound();
}

export async function markRead(deps: Deps, id: string): Promise<Conversation> {
  const [row] = await deps.db().run<Row>(sql`
    with read as (
      update messages set read_at = now()
       where conversation_id = ${id} and direction = 'inbound' and read_at is null)
    update conversations set unread_count = 0, updated_at = case when unread_count > 0 then now() else updated_at end
     where id = ${id} returning *`);
  if (!row) throw conversationNotFound();
  return toConversation(row);
}
