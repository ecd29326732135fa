// Proves invariant 1: with Redis unreachable a send still answers 201, the row exists as pending,
// and the failed enqueue is on the timeline for the sweep to pick up.
import { describe, expect, it } from "vitest";
import { DEAD_URL } from "./helpers/http";
import { freshPair, getJson, send, SMS } from "./helpers/fixtures";

describe("send while Redis is down", () => {
  it("answers 201 with a durable pending message and records enqueue_failed", async () => {
    const { res, body } = await send({ ...SMS, ...freshPair() }, {}, { UPSTASH_REDIS_REST_URL: DEAD_URL, REDIS_TIMEOUT_MS: "500" });
    expect(res.status).toBe(201);
    expect(body.status).toBe("pending");
    const stored = await getJson(`/api/v1/messages/${body.id}`);
    expect(stored.body.status).toBe("pending");
    const { body: timeline } = await getJson(`/api/v1/messages/${body.id}/events`);
    expect(timeline.events.map((e: any) => e.type)).toEqual(["created", "enqueued", "enqueue_failed"]);
  });
});
