// Suppressions (issue 15 §3): the addresses a send must not reach. Two kinds, listed together:
//
// - SMS/MMS opt-outs (`opt_outs`): a recipient texted STOP to one of our numbers; per pair, lifted
//   by START from the recipient (src/services/inbound.ts) or by DELETE here.
// - Email suppressions (`email_suppressions`): SendGrid reported a bounce, a drop, a spam report or
//   an unsubscribe for the address; for every sender, as SendGrid's own suppressions are.
//
// Either way a send to a suppressed recipient is accepted (202/201, so that the record says what
// happened) and then fails at once in the worker, before any provider call: status `failed`, error
// `21610` (opt-out, Twilio's code) or `recipient_suppressed` (email), permanent, not retried.
import { sql } from "drizzle-orm";
import { SUPPRESSION_REASONS } from "../db/schema";
import type { Deps } from "../deps";
import { notFound } from "../errors";
import { normalizeEmail, normalizePhone } from "../validation/address";
import { isPlainObject, UUID } from "../validation/common";
import { iso, type Row } from "./representation";

type Reason = (typeof SUPPRESSION_REASONS)[number];
const REASONS = new Set<string>(SUPPRESSION_REASONS);

interface SuppressionRow {
  address: string;
  reason: Reason;
  detail: string | null;
  provider_event_id: string | null;
  message_id: string | null;
}

/** The suppressing events of an Event Webhook batch, one row per address (the batch's last event wins). */
export function suppressionsOf(elements: unknown[]): SuppressionRow[] {
  const byAddress = new Map<string, SuppressionRow>();
  for (const element of elements) {
    if (!isPlainObject(element) || typeof element.event !== "string" || typeof element.email !== "string") continue;
    const reason = element.event.trim().toLowerCase();
    if (!REASONS.has(reason)) continue;
    const address = normalizeEmail(element.email)?.toLowerCase();
    if (!address) continue;
    const detail = [element.reason, element.status, element.type].find((v): v is string => typeof v === "string" && v.trim() !== "") ?? null;
    const customArgs = isPlainObject(element.custom_args) ? element.custom_args : {};
    const messageId = [element.message_id, customArgs.message_id].find((v): v is string => typeof v === "string" && UUID.test(v)) ?? null;
    byAddress.set(address, {
      address,
      reason: reason as Reason,
      detail: detail?.slice(0, 500) ?? null,
      provider_event_id: typeof element.sg_event_id === "string" ? element.sg_event_id.slice(0, 200) : null,
      message_id: messageId?.toLowerCase() ?? null,
    });
  }
  return [...byAddress.values()];
}

/**
 * Adds the batch's suppressing events to the list. An upsert, so that the provider's retry of a
 * delivery that failed later on (5xx) changes nothing twice; it runs only after the signature check.
 */
export async function suppressFromEvents(deps: Deps, elements: unknown[]): Promise<number> {
  const rows = suppressionsOf(elements);
  if (rows.length === 0) return 0;
  await deps.db().run(sql`
    insert into email_suppressions (address, reason, detail, provider_event_id, message_id)
    select address, reason, detail, provider_event_id, message_id
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        as r(address text, reason text, detail text, provider_event_id text, message_id uuid)
    on conflict (address) do update
       set reason = excluded.reason, detail = excluded.detail, provider_event_id = excluded.provider_event_id,
           message_id = excluded.message_id, created_at = now()`);
  return rows.length;
}

export function toSuppression(row: Row) {
  return {
    address: row.address as string,
    channel: row.channel as "sms" | "email",
    /** the keyword (STOP, ...) or SendGrid's event (bounce, ...) */
    reason: row.reason as string,
    /** for SMS: our number the recipient opted out of; null for email (every sender) */
    sender: (row.sender as string | null) ?? null,
    detail: (row.detail as string | null) ?? null,
    message_id: (row.message_id as string | null) ?? null,
    created_at: iso(row.created_at)!,
  };
}

export type Suppression = ReturnType<typeof toSuppression>;

const UNION = sql`(
  select recipient as address, 'sms' as channel, keyword as reason, sender, null::text as detail, message_id, created_at from opt_outs
  union all
  select address, 'email', reason, null, detail, message_id, created_at from email_suppressions) s`;

/** Both kinds, newest first, one page; `channel` narrows it to one. */
export async function listSuppressions(deps: Deps, page: { limit: number; offset: number; channel?: "sms" | "email" }) {
  const where = page.channel ? sql`where s.channel = ${page.channel}` : sql``;
  const rows = await deps.db().run<Row>(sql`
    select s.*, count(*) over () as total from ${UNION} ${where}
     order by s.created_at desc, s.address, s.sender nulls first
     limit ${page.limit} offset ${page.offset}`);
  let total = rows.length > 0 ? Number(rows[0]!.total) : 0;
  if (rows.length === 0 && page.offset > 0) {
    const [count] = await deps.db().run<Row>(sql`select count(*)::int as n from ${UNION} ${where}`);
    total = Number(count?.n ?? 0);
  }
  return { suppressions: rows.map(toSuppression), total, limit: page.limit, offset: page.offset };
}

/** The stored forms an address may have: E.164 for a phone number, the whole address lower-cased for email. */
function storedForms(address: string, region: string): { phone: string | null; email: string | null } {
  const text = address.trim();
  const email = text.includes("@") ? (normalizeEmail(text)?.toLowerCase() ?? text.toLowerCase()) : null;
  const phone = email ? null : (normalizePhone(text, region) ?? text);
  return { phone, email };
}

/** Lifts every suppression of the address (for SMS, from every sender); 404 when there was none. */
export async function liftSuppression(deps: Deps, address: string, region: string): Promise<{ address: string; removed: Suppression[] }> {
  const { phone, email } = storedForms(address, region);
  const rows = await deps.db().run<Row>(sql`
    with sms as (
      delete from opt_outs where ${phone} :: text is not null and recipient = ${phone}
      returning recipient as address, 'sms' as channel, keyword as reason, sender, null::text as detail, message_id, created_at),
    mail as (
      delete from email_suppressions where ${email} :: text is not null and address = ${email}
      returning address, 'email' as channel, reason, null::text as sender, detail, message_id, created_at)
    select * from sms union all select * from mail`);
  if (rows.length === 0) throw notFound(`No suppression for ${address}`);
  return { address: (phone ?? email)!, removed: rows.map(toSuppression) };
}
