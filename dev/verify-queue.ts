// `npm run verify:queue`: checks a running service end to end through its Redis streams and prints
// PASS/FAIL lines; exit code 0 only if all pass.
//   npm run verify:queue [-- --url http://127.0.0.1:8080 --api-key K]   (REDIS_URL for Redis)
import Redis from "ioredis";
import { parseArgs } from "node:util";
import { boundedFetch, jsonOf } from "./bounded-fetch.ts";

const { values } = parseArgs({
  options: { url: { type: "string", default: process.env.SERVICE_URL ?? "http://127.0.0.1:8080" }, "api-key": { type: "string", default: process.env.API_KEY } },
});
const base = values.url!.replace(/\/$/, "");
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1, commandTimeout: 10_000 });
const headers: Record<string, string> = { "content-type": "application/json" };
if (values["api-key"]) headers.authorization = `Bearer ${values["api-key"]}`;

let failures = 0;
function result(ok: boolean, name: string, detail: string) {
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
  if (!ok) failures++;
}

/** Every request is bounded: no answer within 15 s is HTTP 0 ("no answer") and fails its check. */
async function api(path: string, init: RequestInit = {}) {
  const res = await boundedFetch(`${base}${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } }, 15_000);
  return { status: res.status, body: res.status === 0 ? null : (jsonOf(res) ?? null) };
}

async function poll(id: string, until: (m: any) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let message: any;
  while (Date.now() < deadline) {
    message = (await api(`/api/v1/messages/${id}`)).body;
    if (until(message)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return message;
}

const n = String(Date.now()).slice(-7);
try {
  const stats = await api("/api/v1/queue/stats");
  result(stats.status === 200, "queue stats", `HTTP ${stats.status}`);
  const mode = stats.body?.processing_mode;
  result(mode === "async", "processing mode", `${mode} (SYNC_MESSAGE_PROCESSING=${mode === "sync"}); the worker path is checked in async mode`);

  const sent = await api("/api/v1/messages/send", { method: "POST", body: JSON.stringify({ type: "sms", from: `+1202${n}`, to: `+1303${n}`, body: "verify:queue" }) });
  result(sent.status === 201 && sent.body.status === "pending", "send accepted", `HTTP ${sent.status}, status ${sent.body?.status}`);
  const id = sent.body?.id as string;

  const entries = (await redis.xrevrange("message_queue:sms", "+", "-", "COUNT", 500)) as [string, string[]][];
  const entry = entries.find(([, fields]) => fields[1]?.includes(id));
  result(Boolean(entry), "message reached its stream", entry ? `XRANGE message_queue:sms has ${entry[0]} for ${id} (XLEN ${await redis.xlen("message_queue:sms")})` : `no entry for ${id} among the last 500`);

  // With the provider sandbox (npm run dev) a delivery callback may already have moved it on.
  const final = await poll(id, (m) => ["sent", "delivered", "failed"].includes(m.status));
  result(["sent", "delivered"].includes(final?.status) && final?.sent_at !== null, "pending → sent", `status ${final?.status}, sent_at ${final?.sent_at}, attempts ${final?.attempts}, provider id ${final?.provider_message_id}`);
  const timeline = (await api(`/api/v1/messages/${id}/events`)).body?.events?.map((e: any) => e.type) ?? [];
  result(timeline.includes("enqueued") && timeline.includes("attempt"), "timeline", timeline.join(" → "));

  let stuck = 0;
  for (const type of ["sms", "mms", "email"]) {
    const pending = (await redis.xpending(`message_queue:${type}`, "workers", "IDLE", 300_000, "-", "+", 100).catch(() => [])) as unknown[];
    stuck += pending.length;
  }
  result(stuck === 0, "no stuck entries", `${stuck} entries idle for more than 5 minutes in the consumer groups`);

  const failing = await api("/api/v1/messages/send", { method: "POST", body: JSON.stringify({ type: "sms", from: `+1202${n}`, to: "+15005550001", body: "verify:queue dead letter" }) });
  const dead = await poll(failing.body?.id, (m) => m.status === "failed");
  const letters = (await api("/api/v1/queue/dead-letters?type=sms&limit=100")).body?.dead_letters ?? [];
  result(dead?.status === "failed" && letters.some((d: any) => d.message_id === failing.body?.id), "dead letters", `permanent error → ${dead?.status}, listed: ${letters.some((d: any) => d.message_id === failing.body?.id)}`);
  const retrySets = await Promise.all(["sms", "mms", "email"].map((t) => redis.zcard(`message_retry:${t}`)));
  result(true, "retry sets", `scheduled retries sms ${retrySets[0]}, mms ${retrySets[1]}, email ${retrySets[2]}; message_dlq length ${await redis.xlen("message_dlq")}`);
} catch (error) {
  result(false, "verify:queue", String(error));
} finally {
  redis.disconnect();
}
console.log(failures === 0 ? "\nall checks passed" : `\n${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
