// Rows (snake_case, as Postgres returns them) to the contract's JSON shapes (§2.1, §2.3, §2.4).
import { EMPTY_EMAIL, emailFieldsOf } from "../validation/email";

export type Row = Record<string, unknown>;

export function iso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const date = value instanceof Date ? value : new Date(String(value));
  return date.toISOString();
}

export function toMessage(row: Row) {
  const status = row.status as string;
  const hasError = ["retry", "failed", "undelivered", "held"].includes(status) && row.error_code != null;
  return {
    id: row.id as string,
    conversation_id: row.conversation_id as string,
    parent_id: (row.parent_id as string | null) ?? null,
    provider: row.provider as string,
    provider_message_id: (row.provider_message_id as string | null) ?? null,
    direction: row.direction as string,
    status,
    type: row.type as string,
    from: row.from_address as string,
    to: row.to_address as string,
    body: (row.body as string | null) ?? null,
    attachments: (row.attachments as string[] | null) ?? [],
    send_at: iso(row.send_at),
    sent_at: iso(row.sent_at),
    delivered_at: iso(row.delivered_at),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    metadata: (row.metadata as Record<string, unknown> | null) ?? {},
    attempts: Number(row.attempts ?? 0),
    error: hasError ? { code: String(row.error_code), message: String(row.error_message ?? "") } : null,
    segments: row.segments === null || row.segments === undefined ? null : Number(row.segments),
    ...emailView(row),
  };
}

/**
 * The email fields (issue 15 §3), on every message so that the shape does not depend on the type:
 * null and [] for SMS/MMS. `subject` falls back to metadata.subject, which older clients set.
 */
function emailView(row: Row) {
  const email = row.type === "email" ? (emailFieldsOf(row.email) ?? EMPTY_EMAIL) : EMPTY_EMAIL;
  const metadataSubject = (row.metadata as Record<string, unknown> | null)?.subject;
  const subject = row.type === "email" ? (email.subject ?? (typeof metadataSubject === "string" ? metadataSubject : null)) : null;
  return { subject, html: email.html, from_name: email.from_name, reply_to: email.reply_to, cc: email.cc, bcc: email.bcc };
}

export type Message = ReturnType<typeof toMessage>;

export function toConversation(row: Row, messages: Message[] | null = null) {
  return {
    id: row.id as string,
    participant_from: row.participant_from as string,
    participant_to: row.participant_to as string,
    channel_type: row.channel_type as string,
    type: row.type as string,
    status: row.status as string,
    title: (row.title as string | null) ?? null,
    last_message_at: iso(row.last_message_at),
    message_count: Number(row.message_count ?? 0),
    unread_count: Number(row.unread_count ?? 0),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    metadata: (row.metadata as Record<string, unknown> | null) ?? {},
    messages,
  };
}

export type Conversation = ReturnType<typeof toConversation>;

export function toEvent(row: Row) {
  return {
    id: row.id as string,
    type: row.type as string,
    created_at: iso(row.created_at)!,
    data: (row.data as Record<string, unknown> | null) ?? {},
  };
}
