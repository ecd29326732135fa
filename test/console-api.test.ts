// The API routes the operator console reads and acts through: search by recipient and sender,
// throughput/latency per minute, failures by error code, and redriving every dead letter of a code.
import { describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { freshPair, getJson, send, SMS } from "./helpers/fixtures";
import { env } from "cloudflare:test";
import { Pool } from "@neondatabase/serverless";
import { configureNeon } from "../src/db/client";
import { sql } from "./helpers/db";

/** Statements on one connection; the rows of the last, as text lines. */
async function sqlSession(statements: string[]): Promise<string[]> {
  configureNeon({ NEON_WS_PROXY: env.NEON_WS_PROXY });
  const pool = new Pool({ connectionString: env.DATABASE_URL });
  pool.on("error", () => undefined);
  const client = await pool.connect();
  try {
    let rows: Record<string, unknown>[] = [];
    for (const statement of statements) rows = (await client.query(statement)).rows;
    return rows.map((r) => String(Object.values(r)[0]));
  } finally {
    client.release();
    await pool.end();
  }
}

const SYNC = { SYNC_MESSAGE_PROCESSING: "true" };
/** The sandbox answers Twilio error 21211 (permanent) for this recipient (dev/sandbox/shared.ts). */
const PERMANENT = "+15005550001";

describe("console API", () => {
  it("finds messages by recipient and by sender, normalised as stored, newest first", async () => {
    const pair = freshPair();
    const other = freshPair();
    const first = await send({ ...SMS, ...pair, body: "one" });
    const second = await send({ ...SMS, ...pair, body: "two" });
    await send({ ...SMS, ...other, body: "elsewhere" });
    expect(first.res.status).toBe(201);
    // Written as a person would type it: the filter normalises it like the send did.
    const national = `(${pair.to.slice(2, 5)}) ${pair.to.slice(5, 8)}-${pair.to.slice(8)}`;
    const byTo = await getJson(`/api/v1/messages?to=${encodeURIComponent(national)}`);
    expect(byTo.res.status).toBe(200);
    expect(byTo.body.messages.map((m: { id: string }) => m.id)).toEqual([second.body.id, first.body.id]);
    expect(byTo.body.total).toBe(2);
    const byFrom = await getJson(`/api/v1/messages?from=${encodeURIComponent(pair.from)}&limit=1`);
    expect(byFrom.body.messages.map((m: { id: string }) => m.id)).toEqual([second.body.id]);
    expect(byFrom.body.total).toBe(2);
    expect((await getJson(`/api/v1/messages?to=${encodeURIComponent(pair.from)}`)).body.total).toBe(0);
  });

  it("the search and the failure groups are served by their indexes", async () => {
    // A test table is small enough for a sequential scan; forbid it to see which index the planner has.
    const explain = async (query: string) => (await sqlSession([ "set enable_seqscan = off", `explain ${query}`])).join("\n");
    expect(await explain("select * from messages where to_address = '+15559876543' order by created_at desc, id desc limit 50")).toContain("messages_to_idx");
    expect(await explain("select * from messages where from_address = '+15551234567' order by created_at desc, id desc limit 50")).toContain("messages_from_idx");
    expect(await explain("select * from messages where status = 'failed' and updated_at >= now() - interval '1 hour'")).toContain("messages_failed_idx");
    expect(await explain("select count(*) from dead_letters where error_code = '21211'")).toContain("dead_letters_code_idx");
  });

  it("charts the last hour per minute: created, sent, failed and latency", async () => {
    const pair = freshPair();
    const sent = await send({ ...SMS, ...pair }, {}, SYNC);
    expect(sent.body.status).toBe("sent");
    const failed = await send({ ...SMS, from: pair.from, to: PERMANENT }, {}, SYNC);
    expect(failed.body.status).toBe("failed");
    const { res, body } = await getJson("/api/v1/ops/timeseries?minutes=60");
    expect(res.status).toBe(200);
    expect(body.points).toHaveLength(60);
    expect(body.truncated).toBe(false);
    const minutes = body.points.map((p: { minute: string }) => Date.parse(p.minute));
    expect(minutes.every((m: number, i: number) => i === 0 || m - minutes[i - 1] === 60_000)).toBe(true);
    const total = (field: string) => body.points.reduce((n: number, p: Record<string, number>) => n + p[field]!, 0);
    expect(total("created")).toBeGreaterThanOrEqual(2);
    expect(total("sent")).toBeGreaterThanOrEqual(1);
    expect(total("failed")).toBeGreaterThanOrEqual(1);
    expect(body.points.some((p: { latency_p50_ms: number | null }) => p.latency_p50_ms !== null)).toBe(true);
    expect((await call("/api/v1/ops/timeseries?minutes=0")).status).toBe(422);
    expect((await call("/api/v1/ops/timeseries?minutes=181")).status).toBe(422);
  });

  it("groups recent failures by error code with their dead letters, and redrives all of a code", async () => {
    const pair = freshPair();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const failed = await send({ ...SMS, from: pair.from, to: PERMANENT, body: `fail ${i}` }, {}, SYNC);
      expect(failed.body.status).toBe("failed");
      ids.push(failed.body.id);
    }
    const groups = await getJson("/api/v1/ops/failures");
    expect(groups.res.status).toBe(200);
    const code = groups.body.codes.find((g: { code: string }) => g.code === "21211");
    expect(code).toMatchObject({ error_class: "permanent", types: ["sms"] });
    expect(code.failures).toBeGreaterThanOrEqual(3);
    expect(code.dead_letters).toBeGreaterThanOrEqual(3);

    const before = code.dead_letters as number;
    const redrive = await call("/api/v1/queue/dead-letters/redrive", jsonRequest("POST", { code: "21211", type: "sms", limit: 2 }));
    expect(redrive.status).toBe(200);
    const result = await redrive.json<{ redriven: string[]; remaining: number }>();
    expect(result.redriven).toHaveLength(2);
    expect(result.remaining).toBe(before - 2);
    // Each went back on its queue (the worker then fails it again: the recipient is permanently bad).
    for (const id of result.redriven) {
      const types = (await getJson(`/api/v1/messages/${id}/events`)).body.events.map((e: { type: string }) => e.type);
      expect(types.slice(types.indexOf("redriven"))).toEqual(expect.arrayContaining(["redriven", "enqueued"]));
    }
    const untouched = ids.filter((id) => !result.redriven.includes(id));
    const left = await sql<{ n: number }>("select count(*)::int as n from dead_letters where message_id = any($1)", [untouched]);
    expect(left[0]!.n).toBe(untouched.length);

    const none = await call("/api/v1/queue/dead-letters/redrive", jsonRequest("POST", { code: "no-such-code" }));
    expect(await none.json()).toEqual({ code: "no-such-code", redriven: [], remaining: 0 });
    expect((await call("/api/v1/queue/dead-letters/redrive", jsonRequest("POST", {}))).status).toBe(422);
    expect((await call("/api/v1/queue/dead-letters/redrive", jsonRequest("POST", { code: "x", limit: 201 }))).status).toBe(422);
  });
});
