// Proves invariant 1: with Redis unreachable a send still answers 201, the row exists as pending,
// and the failed enqueue is on the timeline for the sweep to pick up.
import { describe, expect, it } from "vitest";
import { DEAD_URL } from "./helpers/http";
import { freshPair, getJson, send, SMS } from "./helpers/fixtures";
import { drainAll, messageStatus, waitFor } from "./helpers/worker";

describe("send while Redis is down", () => {
  it("answers 201 with a durable pending message and records enqueue_failed", async () => {
    const { res, body } = await send({ ...SMS, ...freshPair() }, {}, { UPSTASH_REDIS_REST_URL: DEAD_URL, REDIS_TIMEOUT_MS: "500" });
    expect(res.status).toBe(201);
    expect(body.status).toBe("pending");
    const stored = await getJson(`/api/v1/messages/${body.id}`);
    expect(stored.res.status).toBe(200);
    const { body: timeline } = await getJson(`/api/v1/messages/${body.id}/events`);
    // The shard's Durable Object (with its own, working Redis) writes the entry later, so the worker
    // may already be on it: the first three events are the send's, and the message is then sent.
    expect(timeline.events.map((e: any) => e.type).slice(0, 3)).toEqual(["created", "enqueued", "enqueue_failed"]);
    await drainAll("sms");
    await waitFor(() => messageStatus(body.id), (m) => m.status === "sent");
  });
});
