// Drives the QueueWorker Durable Objects from tests: run a shard's loop to completion, or all of
// a type's shards, and read messages back.
import { env } from "cloudflare:test";
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

export async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the type's workers until the message satisfies `until` (retries come due meanwhile). */
export function settle(id: string, until: (m: any) => boolean, type: "sms" | "mms" | "email" = "sms", timeoutMs = 20_000) {
  return waitFor(
    async () => {
      await drainAll(type);
      return messageStatus(id);
    },
    until,
    timeoutMs,
  );
}
