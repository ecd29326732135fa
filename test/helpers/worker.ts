// Drives the QueueWorker Durable Objects from tests: run a shard's loop to completion, or all of
// a type's shards, and read messages back.
import { env } from "cloudflare:test";
import { Redis } from "@upstash/redis/cloudflare";
import { getJson } from "./fixtures";

export function worker(name: string) {
  return env.QUEUE_WORKER.getByName(name);
}

/** Runs every shard of a type until none has work left. */
export async function drainAll(type: "sms" | "mms" | "email" = "sms", shards = 1) {
  for (let round = 0; round < 5; round++) {
    const stats = await Promise.all(Array.from({ length: shards }, (_, i) => worker(`${type}:${i}`).drain()));
    if (stats.every((s) => s.nextAlarmAt === null || Date.parse(s.nextAlarmAt) > Date.now() + 500)) return stats;
  }
  return Promise.all(Array.from({ length: shards }, (_, i) => worker(`${type}:${i}`).stats()));
}

export async function messageStatus(id: string) {
  return (await getJson(`/api/v1/messages/${id}`)).body;
}

export async function eventTypes(id: string): Promise<string[]> {
  return (await getJson(`/api/v1/messages/${id}/events`)).body.events.map((e: any) => e.type);
}

/**
 * Polls until `done` holds and returns the value that satisfied it; fails (with the last value seen)
 * when the ceiling passes. Ceilings are generous: a busy CI machine is slow, not wrong.
 */
export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: not done within ${timeoutMs} ms; last value: ${JSON.stringify(value)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the type's workers until the message satisfies `until` (retries come due meanwhile). */
export function settle(id: string, until: (m: any) => boolean, type: "sms" | "mms" | "email" = "sms", timeoutMs = 60_000) {
  return waitFor(
    async () => {
      await drainAll(type);
      return messageStatus(id);
    },
    until,
    timeoutMs,
  );
}

/**
 * Time passes for one scheduled retry: its row and its retry-set member become due now, so that the
 * next drain attempts it (tests of waits measured in minutes, such as the reconcile window).
 */
export async function dueNow(id: string, type: "sms" | "mms" | "email" = "sms") {
  const { sql } = await import("./db");
  await sql("update messages set next_attempt_at = now() where id = $1 and status = 'retry'", [id]);
  const redis = new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, automaticDeserialization: false });
  const members = (await redis.zrange(`message_retry:${type}`, 0, -1)) as string[];
  for (const member of members.filter((m) => m.startsWith(`${id}:`))) await redis.zadd(`message_retry:${type}`, { score: 0, member });
}
