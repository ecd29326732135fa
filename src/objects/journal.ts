// A QueueWorker shard's own durable record of the work in its hands, in the Durable Object's
// SQLite storage, so that a crash costs seconds instead of a lease:
//
//   claimed   the message was claimed and its provider call may be in flight
//   decided   the outcome is known but not yet committed to Postgres (Postgres may be down)
//   recorded  the outcome is committed; Redis has yet to learn its retry or dead letter
//
// After a kill or an eviction the next run finishes the job: a `claimed` message is recorded as an
// ambiguous attempt at once (its call may have reached the provider), `decided` outcomes are
// committed as soon as Postgres answers, and `recorded` ones are handed to Redis. The outcome
// statement is fenced by the claim, so a late record can never overwrite newer work.
//
// Also kept here: message ids whose stream entry the send route could not write (Redis down); the
// shard writes them as soon as Redis answers (src/queue/streams.ts `enqueue`). And scheduled sends
// with their due time: the shard's alarm is armed at the earliest, and at that time they join the
// ids owed to the stream. Being in the object's storage, they survive its eviction and a Redis
// restart; the sweep's database pass finds any that never reached a shard.
import type { Outcome } from "../queue/processing";
import type { Channel } from "../validation/address";

export type JournalState = "claimed" | "decided" | "recorded";

export interface Claimed {
  id: string;
  claimSeq: number;
  attempt: number;
}

export class Journal {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`create table if not exists journal (
      message_id text primary key, claim_seq integer not null, attempt integer not null,
      state text not null, outcome text, updated_at integer not null)`);
    sql.exec("create table if not exists unqueued (message_id text primary key, type text not null, added_at integer not null)");
    sql.exec("create table if not exists scheduled (message_id text primary key, type text not null, due_at integer not null)");
    sql.exec("create index if not exists scheduled_due on scheduled (due_at)");
  }

  claimed(messages: Claimed[]): void {
    const now = Date.now();
    for (const m of messages) {
      this.sql.exec(
        "insert or replace into journal (message_id, claim_seq, attempt, state, outcome, updated_at) values (?, ?, ?, 'claimed', null, ?)",
        m.id,
        m.claimSeq,
        m.attempt,
        now,
      );
    }
  }

  decided(outcomes: Outcome[]): void {
    const now = Date.now();
    for (const o of outcomes) {
      this.sql.exec("update journal set state = 'decided', outcome = ?, updated_at = ? where message_id = ? and claim_seq = ?", JSON.stringify(o), now, o.id, o.claimSeq);
    }
  }

  recorded(ids: Iterable<string>): void {
    for (const id of ids) this.sql.exec("update journal set state = 'recorded', updated_at = ? where message_id = ?", Date.now(), id);
  }

  forget(ids: Iterable<string>): void {
    for (const id of ids) this.sql.exec("delete from journal where message_id = ?", id);
  }

  /** Claims whose provider call was in flight when the shard stopped, with when they were claimed. */
  inFlight(): (Claimed & { claimedAt: number })[] {
    return this.sql
      .exec<{ message_id: string; claim_seq: number; attempt: number; updated_at: number }>(
        "select message_id, claim_seq, attempt, updated_at from journal where state = 'claimed' order by updated_at",
      )
      .toArray()
      .map((r) => ({ id: r.message_id, claimSeq: Number(r.claim_seq), attempt: Number(r.attempt), claimedAt: Number(r.updated_at) }));
  }

  outcomes(state: "decided" | "recorded"): Outcome[] {
    return this.sql
      .exec<{ outcome: string }>("select outcome from journal where state = ? order by updated_at", state)
      .toArray()
      .map((r) => JSON.parse(r.outcome) as Outcome);
  }

  /** The oldest entry still owed, epoch ms (for the "longest wait to be recorded" figure); null when empty. */
  oldestOwed(): number | null {
    const [row] = this.sql.exec<{ at: number | null }>("select min(updated_at) as at from journal where state <> 'recorded'").toArray();
    return row?.at ?? null;
  }

  get size(): number {
    const [row] = this.sql.exec<{ n: number }>("select count(*) as n from journal").toArray();
    return Number(row?.n ?? 0);
  }

  unqueue(id: string, type: Channel): void {
    this.sql.exec("insert or ignore into unqueued (message_id, type, added_at) values (?, ?, ?)", id, type, Date.now());
  }

  unqueued(): { id: string; type: Channel; addedAt: number }[] {
    return this.sql
      .exec<{ message_id: string; type: string; added_at: number }>("select message_id, type, added_at from unqueued order by added_at limit 500")
      .toArray()
      .map((r) => ({ id: r.message_id, type: r.type as Channel, addedAt: Number(r.added_at) }));
  }

  queued(ids: Iterable<string>): void {
    for (const id of ids) this.sql.exec("delete from unqueued where message_id = ?", id);
  }

  /** A scheduled send, due at `dueAt` (epoch ms); a second call for the same id keeps the latest time. */
  schedule(id: string, type: Channel, dueAt: number): void {
    this.sql.exec("insert or replace into scheduled (message_id, type, due_at) values (?, ?, ?)", id, type, dueAt);
  }

  /** The earliest scheduled due time, epoch ms; null when none is waiting. */
  earliestScheduled(): number | null {
    const [row] = this.sql.exec<{ at: number | null }>("select min(due_at) as at from scheduled").toArray();
    return row?.at == null ? null : Number(row.at);
  }

  /** Scheduled sends due by `now` move to the ids owed to the stream, in one transaction; returns how many. */
  releaseDue(now: number): number {
    const due = this.sql.exec<{ message_id: string; type: string; due_at: number }>("select message_id, type, due_at from scheduled where due_at <= ? order by due_at limit 500", now).toArray();
    for (const r of due) {
      this.sql.exec("insert or ignore into unqueued (message_id, type, added_at) values (?, ?, ?)", r.message_id, r.type, Number(r.due_at));
      this.sql.exec("delete from scheduled where message_id = ?", r.message_id);
    }
    return due.length;
  }

  get scheduledCount(): number {
    const [row] = this.sql.exec<{ n: number }>("select count(*) as n from scheduled").toArray();
    return Number(row?.n ?? 0);
  }
}
