// Exact attribution after an ambiguous attempt (a request that may or may not have reached the
// provider). A provider message (SID) is attributed to at most one of our messages, ever, and only
// when nothing else could explain it:
//
// - only provider messages created inside one of the message's own ambiguous windows count (the
//   provider client filters on content and window);
// - a SID already stored on any of our messages is someone else's answer;
// - our other unresolved ambiguous messages with the same content compete for the same SIDs: they
//   are paired one-to-one in time order (for identical messages which copy is which does not
//   change what the recipient receives: each of our messages is delivered once);
// - more candidates than competing messages means a message we did not send (another system on
//   the same number) looks like ours: attribution is uncertain, and the message is held, neither
//   resent nor called sent, until a status callback or an operator settles it.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { widen, type CandidateList, type OutboundMessage, type Window } from "../providers/types";

export type Attribution = { kind: "found"; sid: string; status: string } | { kind: "absent" } | { kind: "uncertain"; reason: string };

interface Rival {
  id: string;
  windows: Window[];
}

const inside = (createdMs: number, windows: Window[], skewMs: number) =>
  windows.some((w) => {
    const wide = widen(w, skewMs);
    return createdMs >= wide.startedAt && createdMs <= wide.endedAt;
  });

export async function attribute(db: Database, config: Config, message: OutboundMessage, found: CandidateList): Promise<Attribution> {
  if (!found.complete) return { kind: "uncertain", reason: "the provider's message list could not be read to the start of the attempt's window" };
  if (found.candidates.length === 0) return { kind: "absent" };
  const skewMs = config.RECONCILE_CLOCK_SKEW_MS;
  const sids = found.candidates.map((c) => c.sid);
  // One round trip: which SIDs are already ours, and which of our messages compete for the rest.
  const rows = await db.run<{ kind: string; id: string; windows: { started_at: string; ended_at: string }[] | null }>(sql`
    select 'taken' as kind, provider_message_id as id, null::jsonb as windows
      from messages where provider = ${message.type === "email" ? "sendgrid" : "twilio"} and provider_message_id = any(${`{${sids.join(",")}}`}::text[])
    union all
    select 'rival', id::text, ambiguous_windows
      from messages
     where to_address = ${message.to} and from_address = ${message.from} and type = ${message.type}
       and body is not distinct from ${message.body} and cardinality(attachments) = ${message.attachments.length}
       and ambiguous_attempt and provider_message_id is null
       and status in ('pending', 'queued', 'sending', 'retry', 'held')`);
  const taken = new Set(rows.filter((r) => r.kind === "taken").map((r) => r.id));
  const free = found.candidates.filter((c) => !taken.has(c.sid)).sort((a, b) => a.createdMs - b.createdMs || a.sid.localeCompare(b.sid));
  if (free.length === 0) return { kind: "absent" };

  const rivals: Rival[] = rows
    .filter((r) => r.kind === "rival")
    .map((r) => ({ id: r.id, windows: (r.windows ?? []).map((w) => ({ startedAt: Date.parse(w.started_at), endedAt: Date.parse(w.ended_at) })) }));
  if (!rivals.some((r) => r.id === message.id)) rivals.push({ id: message.id, windows: message.ambiguousWindows });
  // Only rivals whose windows could hold one of these candidates compete for them.
  const competing = rivals
    .filter((r) => free.some((c) => inside(c.createdMs, r.windows, skewMs)))
    .sort((a, b) => Math.min(...a.windows.map((w) => w.startedAt)) - Math.min(...b.windows.map((w) => w.startedAt)) || a.id.localeCompare(b.id));
  if (free.length > competing.length) {
    return { kind: "uncertain", reason: `${free.length} provider messages match but only ${competing.length} of ours could have made them` };
  }
  // Pair in time order: each competing message takes the earliest free candidate in its windows.
  const assigned = new Set<string>();
  for (const rival of competing) {
    const pick = free.find((c) => !assigned.has(c.sid) && inside(c.createdMs, rival.windows, skewMs));
    if (!pick) continue;
    assigned.add(pick.sid);
    if (rival.id === message.id) return { kind: "found", sid: pick.sid, status: pick.status };
  }
  return { kind: "absent" };
}
