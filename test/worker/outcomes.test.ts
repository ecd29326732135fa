// The outcome statement's guarantees, against real Postgres: one bad row never holds back the rest
// of its batch, a provider id is never written onto a second message, a message already in a final
// state is never dead-lettered, and a stale claim (superseded by a newer one, even after a retry
// reset `attempts`) cannot record over the newer work.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { openDatabase } from "../../src/db/client";
import { claim, recordOutcomes, type Outcome } from "../../src/queue/processing";
import { freshPair, sendPending, SMS } from "../helpers/fixtures";
import { sql } from "../helpers/db";

const db = () => openDatabase(loadConfig(env));

/** A pending message claimed as a worker would: returns its claim. */
async function claimed() {
  const { body } = await sendPending({ ...SMS, ...freshPair() });
  const [message] = await claim(db(), [body.id]);
  return message!;
}

function sent(m: { id: string; claimSeq: number; attempt: number }, sid: string): Outcome {
  return { id: m.id, type: "sms", status: "sent", claimSeq: m.claimSeq, attempt: m.attempt, counted: true, durationMs: 5, providerName: "twilio", providerMessageId: sid, providerStatus: "queued", evidence: { kind: "alive" }, recordId: crypto.randomUUID() };
}

function failed(m: { id: string; claimSeq: number; attempt: number }, errorClass = "permanent"): Outcome {
  return { id: m.id, type: "sms", status: "failed", claimSeq: m.claimSeq, attempt: m.attempt, counted: true, durationMs: 5, providerName: "twilio", errorClass: errorClass as Outcome["errorClass"], errorCode: "21211", errorMessage: "Invalid 'To' Phone Number", evidence: { kind: "alive" }, recordId: crypto.randomUUID() };
}

const sid = () => `SM${crypto.randomUUID().replace(/-/g, "")}`;
const row = async (id: string) => (await sql<{ status: string; provider_message_id: string | null; attempts: number }>("select status, provider_message_id, attempts from messages where id = $1", [id]))[0]!;

describe("recording outcomes", () => {
  it("records the rest of a batch when one outcome breaks a constraint, and reports that one", async () => {
    const [a, b, c] = [await claimed(), await claimed(), await claimed()];
    const bad = { ...failed(b), errorClass: "not-a-class" as Outcome["errorClass"], status: "nonsense" as Outcome["status"] };
    const { recorded, failed: refused } = await recordOutcomes(db(), [sent(a, sid()), bad, failed(c)]);
    expect([...recorded].sort()).toEqual([a.id, c.id].sort());
    expect(refused.map((o) => o.id)).toEqual([b.id]);
    expect((await row(a.id)).status).toBe("sent");
    expect((await row(b.id)).status).toBe("sending");
    expect((await row(c.id)).status).toBe("failed");
  });

  it("never writes a provider id onto a second message: the later one keeps none and its timeline says why; the batch goes on", async () => {
    const [a, b, c] = [await claimed(), await claimed(), await claimed()];
    const shared = sid();
    await recordOutcomes(db(), [sent(a, shared)]);
    const { recorded } = await recordOutcomes(db(), [sent(b, shared), sent(c, sid())]);
    expect([...recorded].sort()).toEqual([b.id, c.id].sort());
    expect(await row(a.id)).toMatchObject({ status: "sent", provider_message_id: shared });
    expect(await row(b.id)).toMatchObject({ status: "sent", provider_message_id: null });
    const notes = await sql<{ data: any }>("select data from message_events where message_id = $1 and type = 'attempt' and data ? 'attribution_conflict'", [b.id]);
    expect(notes.map((n) => n.data.provider_message_id)).toEqual([shared]);
    expect((await row(c.id)).provider_message_id).not.toBeNull();
  });

  it("two outcomes of one batch with the same provider id: both recorded, the id on one of them only", async () => {
    const [a, b] = [await claimed(), await claimed()];
    const shared = sid();
    const { recorded, failed: refused } = await recordOutcomes(db(), [sent(a, shared), sent(b, shared)]);
    expect(refused).toEqual([]);
    expect([...recorded].sort()).toEqual([a.id, b.id].sort());
    const holders = await sql<{ id: string }>("select id from messages where provider_message_id = $1", [shared]);
    expect(holders).toHaveLength(1);
  });

  // Found by npm run chaos: Postgres crashed after the outcome's commit but before its answer; the
  // worker's journal recorded the same outcome again, and the message's timeline showed two
  // attempts and two moves to failed for one provider call.
  it("recording the same outcome again (its commit's answer was lost) changes nothing and still reports it recorded", async () => {
    const [a, b] = [await claimed(), await claimed()];
    const outcomes: Outcome[] = [failed(a), { ...failed(b, "transient"), status: "retry", counted: false, dueAt: Date.now() + 60_000, delaySeconds: 60 }];
    const first = await recordOutcomes(db(), outcomes);
    const again = await recordOutcomes(db(), outcomes);
    expect([...again.recorded].sort()).toEqual([...first.recorded].sort());
    expect([...again.recorded].sort()).toEqual([a.id, b.id].sort());
    for (const m of [a, b]) {
      const events = await sql<{ type: string }>("select type from message_events where message_id = $1 and type in ('attempt', 'status_changed', 'dead_lettered', 'retry_scheduled') order by created_at", [m.id]);
      expect(events.filter((e) => e.type === "attempt")).toHaveLength(1);
      expect(events.filter((e) => e.type === "status_changed")).toHaveLength(2); // pending → sending, sending → outcome
    }
  });

  it("does not dead-letter a message a callback already delivered, though the worker's outcome says failed", async () => {
    const m = await claimed();
    await sql("update messages set status = 'delivered', delivered_at = now() where id = $1", [m.id]);
    const { recorded } = await recordOutcomes(db(), [failed(m)]);
    expect([...recorded]).toEqual([m.id]);
    expect((await row(m.id)).status).toBe("delivered");
    expect(await sql("select 1 from dead_letters where message_id = $1", [m.id])).toEqual([]);
    expect(await sql("select 1 from message_events where message_id = $1 and type = 'dead_lettered'", [m.id])).toEqual([]);
  });

  it("a stale claim cannot record over a newer one, even after a retry request reset attempts to the same number", async () => {
    const stale = await claimed();
    // The message was retried by hand and claimed again: attempts is back at 1, claim_seq moved on.
    await sql("update messages set status = 'retry', attempts = 0, next_attempt_at = null where id = $1", [stale.id]);
    const [fresh] = await claim(db(), [stale.id]);
    expect(fresh!.attempt).toBe(stale.attempt);
    expect(fresh!.claimSeq).toBe(stale.claimSeq + 1);
    const { recorded } = await recordOutcomes(db(), [failed(stale)]);
    expect(recorded.size).toBe(0);
    expect((await row(stale.id)).status).toBe("sending");
    await recordOutcomes(db(), [sent(fresh!, sid())]);
    expect((await row(stale.id)).status).toBe("sent");
  });
});
