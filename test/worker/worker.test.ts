// Proves the QueueWorker alarm loop, retries, dead letters, the sweep and sync mode (docs/architecture.md
//- with the simulator provider, real Redis streams and real Postgres.
import { env } from "cloudflare:test";
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, it } from "vitest";
import { sweep } from "../../src/index";
import { call } from "../helpers/http";
import { EMAIL, freshPair, getJson, send, sendPending, SMS } from "../helpers/fixtures";
import { drainAll, eventTypes, messageStatus, settle, waitFor, worker } from "../helpers/worker";
import { sql } from "../helpers/db";
import { programme } from "../helpers/sandbox";

const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, automaticDeserialization: false });

async function events(id: string) {
  return (await getJson(`/api/v1/messages/${id}/events`)).body.events as { type: string; data: any; created_at: string }[];
}

describe("QueueWorker", () => {
  it("an async send is pending at once, sent after the worker runs, with one attempt", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    expect(body.status).toBe("pending");
    await drainAll("sms");
    const message = await waitFor(() => messageStatus(body.id), (m) => m.status === "sent");
    expect(message).toMatchObject({ status: "sent", attempts: 1, error: null });
    expect(message.sent_at).not.toBeNull();
    expect(message.provider_message_id).toMatch(/^SM[0-9a-f]{32}$/);
    const timeline = await events(body.id);
    expect(timeline.map((e) => e.type)).toEqual(["created", "enqueued", "status_changed", "attempt", "status_changed"]);
    expect(timeline[3]!.data).toMatchObject({ attempt: 1, outcome: "success", provider: "twilio", provider_status: "queued" });
    expect(timeline[4]!.data).toEqual({ from: "sending", to: "sent", source: "worker" });
  });

  it("goes back to sleep with no alarm and nothing pending once the stream is drained", async () => {
    await send({ ...SMS, ...freshPair() });
    await drainAll("sms");
    // A doorbell may land just after the run and cost one more (empty) run; then it sleeps.
    const stats = await waitFor(() => worker("sms:0").stats(), (s) => s.nextAlarmAt === null && !s.running);
    expect(stats.nextAlarmAt).toBeNull();
    const pending = (await redis.xpending("message_queue:sms", "workers", "-", "+", 10)) as unknown[];
    expect(pending).toEqual([]);
  });

  it("a permanent error fails at once, is dead-lettered, and can be redriven once (cases 26, 27)", async () => {
    const { body } = await send({ ...SMS, to: "+15005550001" });
    await drainAll("sms");
    const failed = await waitFor(() => messageStatus(body.id), (m) => m.status === "failed");
    expect(failed).toMatchObject({ status: "failed", attempts: 1, error: { code: "21211" } });
    expect(failed.error.message).toMatch(/invalid 'to' phone number/i); // Twilio's wording, from the sandbox
    expect((await eventTypes(body.id)).at(-1)).toBe("dead_lettered");
    const list = await getJson("/api/v1/queue/dead-letters?type=sms&limit=100");
    const entry = list.body.dead_letters.find((d: any) => d.message_id === body.id);
    expect(entry).toMatchObject({ error_class: "permanent", attempts: 1, type: "sms", conversation_id: body.conversation_id, error: { code: "21211" } });

    const redriven = await call(`/api/v1/queue/dead-letters/${body.id}/redrive`, { method: "POST" });
    expect(redriven.status).toBe(200);
    expect(await redriven.json()).toMatchObject({ status: "pending", attempts: 0, error: null });
    const again = await call(`/api/v1/queue/dead-letters/${body.id}/redrive`, { method: "POST" });
    expect(again.status).toBe(404);
    expect((await again.json<any>()).message).toBe("Dead letter not found");
    // The doorbell wakes the worker, which fails it again: redriven and enqueued come first.
    const timeline = await eventTypes(body.id);
    const redrivenAt = timeline.indexOf("redriven");
    expect(redrivenAt).toBeGreaterThan(0);
    expect(timeline[redrivenAt + 1]).toBe("enqueued");
  });

  it("throttling is not failure: a message rate limited on every attempt waits without spending attempts, then fails as expired at its maximum age", async () => {
    // Its day is nearly over: MESSAGE_MAX_AGE_SECONDS (24 h) from its creation is a few seconds away.
    // Aged before it is enqueued: a shard claiming it while the UPDATE holds the row would pass it over.
    const { body } = await sendPending({ ...SMS, to: "+15005550002" });
    await sql(`update messages set created_at = now() - interval '86396 seconds' where id = $1`, [body.id]);
    await redis.xadd("message_queue:sms", "*", { data: JSON.stringify({ message_id: body.id, retry_count: 0, scheduled_at: new Date().toISOString() }) });
    const final = await settle(body.id, (m) => m.status === "failed");
    expect(final).toMatchObject({ status: "failed", attempts: 0, error: { code: "expired" } });
    const timeline = await events(body.id);
    // Every provider answer was a 429, none counted; the last attempt may be the expiry itself
    // (refused at claim, no provider call) or the 429 whose retry would come after the maximum age.
    const throttled = timeline.filter((e) => e.type === "attempt" && e.data.error_code === "20429");
    expect(throttled.length).toBeGreaterThanOrEqual(2);
    for (const a of throttled) expect(a.data).toMatchObject({ outcome: "error", error_class: "rate_limited", counted: false });
    const others = timeline.filter((e) => e.type === "attempt" && e.data.error_code !== "20429");
    expect(others.map((e) => e.data.error_code)).toEqual(others.length === 0 ? [] : ["expired"]);
    timeline.forEach((scheduled, i) => {
      if (scheduled.type !== "retry_scheduled") return;
      // Retry-After (1 s) wins over the test backoff (0.1 s base): the retry is due at least 1 s
      // after the claim that preceded the provider call.
      const claim = timeline.slice(0, i).findLast((e) => e.type === "status_changed" && e.data.to === "sending")!;
      expect(scheduled.data.delay_seconds).toBeGreaterThanOrEqual(1);
      expect(Date.parse(scheduled.data.due_at) - Date.parse(claim.created_at)).toBeGreaterThanOrEqual(1000);
    });
    const dead = timeline.find((e) => e.type === "dead_lettered")!;
    expect(dead.data.error_code).toBe("expired");
  });

  it("the same message XADDed three times leads to one provider call, and every entry is acked", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    for (let i = 0; i < 2; i++) {
      await redis.xadd("message_queue:sms", "*", { data: JSON.stringify({ message_id: body.id, retry_count: 0, scheduled_at: new Date().toISOString() }) });
    }
    await drainAll("sms");
    await waitFor(() => messageStatus(body.id), (m) => m.status === "sent");
    await drainAll("sms");
    const attempts = (await events(body.id)).filter((e) => e.type === "attempt");
    expect(attempts).toHaveLength(1);
    expect(await redis.xpending("message_queue:sms", "workers", "-", "+", 10)).toEqual([]);
  });

  it("acknowledges malformed stream entries without failing the batch", async () => {
    const { body } = await send({ ...SMS, ...freshPair() });
    for (const data of ["not json", JSON.stringify({ message_id: "not-a-uuid" }), JSON.stringify({ message_id: "x}','{y" }), JSON.stringify({ other: 1 })]) {
      await redis.xadd("message_queue:sms", "*", { data });
    }
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(body.id), (m) => m.status === "sent")).status).toBe("sent");
    expect(await redis.xpending("message_queue:sms", "workers", "-", "+", 10)).toEqual([]);
    expect((await worker("sms:0").stats()).lastError).toBeNull();
  });

  it("1,000 messages across 2 shards are all sent, none twice", async () => {
    const pair = freshPair();
    const ids: string[] = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => send({ ...SMS, ...pair, body: `m${i + j}` }, {}, { SHARDS_PER_TYPE: "2" })));
      ids.push(...batch.map((r) => r.body.id));
    }
    await Promise.all([worker("sms:0").drain(), worker("sms:1").drain()]);
    await drainAll("sms", 2);
    const rows = await sql<{ status: string; n: number }>(
      `select status, count(*)::int as n from messages where id = any($1::uuid[]) group by status`,
      [ids],
    );
    expect(rows).toEqual([{ status: "sent", n: 1000 }]);
    const attempts = await sql<{ n: number; messages: number }>(
      `select count(*)::int as n, count(distinct message_id)::int as messages from message_events where type = 'attempt' and message_id = any($1::uuid[])`,
      [ids],
    );
    expect(attempts[0]).toEqual({ n: 1000, messages: 1000 });
    const stats = await Promise.all([worker("sms:0").stats(), worker("sms:1").stats()]);
    expect(stats.every((s) => s.processed > 0)).toBe(true);
  });
});

describe("opt-out", () => {
  it("after STOP, a send to that recipient fails with 21610 without a provider call; START opts back in", async () => {
    const pair = freshPair();
    const inbound = (body: string) =>
      call("/api/v1/webhooks/twilio", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messaging_provider_id: `in-${crypto.randomUUID()}`, from: pair.to, to: pair.from, type: "sms", body }),
      });
    expect((await inbound("STOP")).status).toBe(200);
    const { body } = await send({ ...SMS, ...pair });
    await drainAll("sms");
    const failed = await waitFor(() => messageStatus(body.id), (m) => m.status === "failed");
    expect(failed.error).toEqual({ code: "21610", message: "Attempt to send to unsubscribed recipient" });
    const attempt = (await events(body.id)).find((e) => e.type === "attempt")!;
    expect(attempt.data).toMatchObject({ provider_called: false, error_class: "permanent" });
    expect(attempt.data.http_status).toBeUndefined();

    expect((await inbound("start")).status).toBe(200);
    const again = await send({ ...SMS, ...pair });
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(again.body.id), (m) => m.status === "sent")).status).toBe("sent");
  });
});

describe("sync mode", () => {
  it("answers with the sent message, writes no stream entry, and the worker sends nothing more", async () => {
    const before = Number(await redis.xlen("message_queue:email"));
    const { res, body } = await send({ ...EMAIL, to: `sync-${Date.now()}@example.com` }, {}, { SYNC_MESSAGE_PROCESSING: "true" });
    expect(res.status).toBe(201);
    expect(body).toMatchObject({ status: "sent", attempts: 1 });
    expect(body.provider_message_id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(Number(await redis.xlen("message_queue:email"))).toBe(before);
    await drainAll("email");
    expect((await events(body.id)).filter((e) => e.type === "attempt")).toHaveLength(1);
    expect(await eventTypes(body.id)).not.toContain("enqueued");
  });

  it("a failed inline attempt answers retry and is finished by the worker", async () => {
    const { body } = await send({ ...EMAIL, to: "transient-failure@example.com" }, {}, { SYNC_MESSAGE_PROCESSING: "true" });
    expect(body.status).toBe("retry");
    expect(body.error).toMatchObject({ code: "server_error" });
    const final = await settle(body.id, (m) => m.status === "failed", "email");
    expect(final.attempts).toBe(3);
  });
});

describe("sweep", () => {
  it("an id handed to the shard while its run is on (enqueueLater mid-run) is written and sent by that run's re-arm, without the sweep", async () => {
    // An alarm set during a run is deleted when the run ends and goes to sleep, so the shard must
    // remember the handover and re-arm itself; otherwise the message waits for the sweep's slow pass.
    const slow = { ...SMS, ...freshPair() };
    await programme(slow.to, ["slow:800"]);
    const { body: busy } = await send(slow);
    await waitFor(() => messageStatus(busy.id), (m) => m.status === "sending");
    const { body: handed } = await sendPending({ ...SMS, ...freshPair() });
    await worker("sms:0").enqueueLater(handed.id);
    // No drain, no doorbell, no sweep: only the shard's own alarms may send it.
    await waitFor(() => messageStatus(handed.id), (m) => m.status === "sent", 60_000);
    expect((await messageStatus(busy.id)).status).toBe("sent");
  });

  it("a send whose XADD failed is answered 201 and reaches its stream through its shard, which keeps the id until Redis answers", async () => {
    const { res, body } = await send({ ...SMS, ...freshPair() }, {}, { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", REDIS_TIMEOUT_MS: "500" });
    expect(res.status).toBe(201);
    const failed = (await events(body.id)).find((e) => e.type === "enqueue_failed")!;
    expect(failed.data).toMatchObject({ will_retry: "shard" });
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(body.id), (m) => m.status === "sent")).attempts).toBe(1);
    expect((await events(body.id)).filter((e) => e.type === "attempt")).toHaveLength(1);
  });

  it("the sweep's safety pass delivers a message that committed but never reached its stream (the Worker died before the XADD)", async () => {
    const { body } = await sendPending({ ...SMS, ...freshPair() });
    // Two minutes pass.
    await sql(`update messages set created_at = created_at - interval '2 minutes', updated_at = updated_at - interval '2 minutes' where id = $1`, [body.id]);
    const result = await sweep(env, { forceDatabase: true });
    expect(result.reenqueued.map((m) => m.id)).toContain(body.id);
    await drainAll("sms");
    expect((await waitFor(() => messageStatus(body.id), (m) => m.status === "sent")).attempts).toBe(1);
    const enqueued = (await events(body.id)).filter((e) => e.type === "enqueued");
    expect(enqueued.at(-1)!.data).toMatchObject({ queue: "sms", source: "sweep" });
  });

  it("does not re-enqueue a message that merely waits in the stream", async () => {
    // A backlog: the row has not been touched for two minutes and its entry sits undelivered in the
    // stream (added without a doorbell, so no worker has read it yet). Its created_at stays: an
    // entry is always younger than its row, and the sweep compares rows with delivered entries.
    const { body } = await sendPending({ type: "mms", ...freshPair(), body: "", attachments: ["https://example.com/a.jpg"] });
    await sql(`update messages set updated_at = updated_at - interval '2 minutes' where id = $1`, [body.id]);
    await redis.xadd("message_queue:mms", "*", { data: JSON.stringify({ message_id: body.id, retry_count: 0, scheduled_at: new Date().toISOString() }) });
    const result = await sweep(env, { forceDatabase: true });
    expect(result.reenqueued.map((m) => m.id)).not.toContain(body.id);
    expect(result.woken).toContain("mms:0");
    await drainAll("mms");
    await waitFor(() => messageStatus(body.id), (m) => m.status === "sent");
    expect((await events(body.id)).filter((e) => e.type === "attempt")).toHaveLength(1);
  });

  it("recovers a row stuck in sending past the lease (a worker that lost its journal) as an ambiguous attempt and sends it again", async () => {
    // Stored but not enqueued, so no live worker races the simulated crash below.
    const { body } = await sendPending({ ...SMS, ...freshPair() });
    // A worker claimed it and died before recording the outcome.
    await sql(`update messages set status = 'sending', attempts = 1, updated_at = now() - interval '10 minutes' where id = $1`, [body.id]);
    const result = await sweep(env, { forceDatabase: true });
    expect(result.recovered).toContainEqual({ id: body.id, type: "sms", status: "retry" });
    await drainAll("sms");
    const final = await waitFor(() => messageStatus(body.id), (m) => m.status === "sent");
    // The worker's death is not the message's fault: the lost attempt does not count.
    expect(final.attempts).toBe(1);
    const timeline = await events(body.id);
    expect(timeline.some((e) => e.type === "status_changed" && e.data.reason === "lease_expired")).toBe(true);
  });

  it("writes a heartbeat that /ready reports", async () => {
    await sweep(env);
    const ready = await getJson("/ready");
    expect(ready.body.checks.redis.sweep_heartbeat_age_seconds).toBeLessThan(5);
  });

  it("trims every acknowledged entry, keeping only the group's last delivered one", async () => {
    for (let i = 0; i < 3; i++) await send({ ...SMS, ...freshPair() });
    await drainAll("sms");
    expect(await redis.xpending("message_queue:sms", "workers", "-", "+", 10)).toEqual([]);
    const before = Number(await redis.xlen("message_queue:sms"));
    expect(before).toBeGreaterThanOrEqual(3);
    const result = await sweep(env);
    const sms = result.types.find((t) => t.type === "sms")!;
    expect(sms.trimmed).toBe(before - 1);
    expect(Number(await redis.xlen("message_queue:sms"))).toBe(1);
  });
});

describe("queue stats", () => {
  it("reports every key for sms, mms and email (case 29)", async () => {
    const { res, body } = await getJson("/api/v1/queue/stats");
    expect(res.status).toBe(200);
    for (const type of ["sms", "mms", "email"]) {
      expect(Object.keys(body.queues[type]).sort()).toEqual(
        ["circuit", "dead_letters", "failed_total", "held", "oldest_pending_age_seconds", "pending", "processed_total", "retry_scheduled", "stream", "stream_length", "worker_heartbeat_age_seconds"].sort(),
      );
      expect(body.queues[type].stream).toBe(`message_queue:${type}`);
    }
    expect(body.queues.sms.processed_total).toBeGreaterThan(0);
    expect(body.generated_at).toMatch(/Z$/);
  });
});
