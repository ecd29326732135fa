// The customer's webhook receiver in the provider sandbox (dev/sandbox/receiver.ts) and the status
// webhooks' Durable Object, as tests drive them.
import { env } from "cloudflare:test";
import { WEBHOOK_WORKER_NAME } from "../../src/services/outbound-webhooks";
import { sandboxUrl } from "./sandbox";

export interface ReceivedWebhook {
  seq: number;
  time: string;
  name: string;
  headers: Record<string, string>;
  rawBody: string;
  answer: string;
}

let counter = 0;
/** A receiver name no other test uses, and its URL. */
export function newReceiver(): { name: string; url: string } {
  counter += 1;
  const name = `r${Date.now().toString(36)}${counter}`;
  return { name, url: `${sandboxUrl()}/__receiver/${name}` };
}

/** Answers for the next requests to `name` ("500", "200", "hang", "slow:<ms>"), then 200. */
export async function programmeReceiver(name: string, answers: string[]): Promise<void> {
  const res = await fetch(`${sandboxUrl()}/__sandbox/receiver`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, answers }),
  });
  if (!res.ok) throw new Error(`receiver programme: ${res.status} ${await res.text()}`);
}

export async function receivedBy(name: string): Promise<ReceivedWebhook[]> {
  const res = await fetch(`${sandboxUrl()}/__sandbox/receiver?name=${encodeURIComponent(name)}`);
  return (await res.json<{ received: ReceivedWebhook[] }>()).received;
}

export function webhookWorker() {
  return env.WEBHOOK_WORKER.getByName(WEBHOOK_WORKER_NAME);
}

/** One run of the webhook worker to its end. */
export function drainWebhooks() {
  return webhookWorker().drain();
}
