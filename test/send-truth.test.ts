// The answer to a send matches the commit: a 201 means stored, a plain 503 means not stored (and
// never will be), and only when even that cannot be known is the answer a 503 that names the
// message id as "may have been stored". The failures are made at the boundary to Postgres (the
// Neon HTTP driver's fetch) and in Postgres itself (a trigger that sleeps), against the real app.
import { env } from "cloudflare:test";
import { neonConfig } from "@neondatabase/serverless";
import { afterEach, describe, expect, it } from "vitest";
import { call, jsonRequest } from "./helpers/http";
import { freshPair, getJson, send, SMS, EMAIL } from "./helpers/fixtures";
import { sql } from "./helpers/db";

const blackhole = (env as unknown as { TEST_BLACKHOLE: string }).TEST_BLACKHOLE;
const realFetch = neonConfig.fetchFunction;
afterEach(() => {
  neonConfig.fetchFunction = realFetch;
});

/** Intercepts Neon HTTP requests whose statements contain `marker`. */
function intercept(marker: string, behaviour: (forward: () => Promise<Response>) => Promise<Response>) {
  neonConfig.fetchFunction = async (url: string, init: RequestInit) => {
    const forward = () => fetch(url, init);
    if (typeof init?.body === "string" && init.body.includes(marker)) return behaviour(forward);
    return forward();
  };
}

const SEND_STATEMENT = "insert into send_fences (message_id) select id from msg";
const FENCE_CHECK = "insert into send_fences (message_id, abandoned)";
const lost = () => new TypeError("Network connection lost.");

async function rowsWithBody(body: string) {
  return sql<{ id: string }>("select id from messages where body = $1", [body]);
}

describe("a send whose outcome the route cannot see", () => {
  it("its answer lost after the commit: the fence says stored, so the answer is 201 with the stored message", async () => {
    const body = `lost answer ${crypto.randomUUID()}`;
    intercept(SEND_STATEMENT, async (forward) => {
      await (await forward()).text(); // Postgres committed; its answer never reaches us
      throw lost();
    });
    const { res, body: message } = await send({ ...SMS, ...freshPair(), body });
    expect(res.status).toBe(201);
    expect(await rowsWithBody(body)).toEqual([{ id: message.id }]);
  });

  it("with an Idempotency-Key: one row, and the client's retry gets the same message", async () => {
    const body = `lost answer, keyed ${crypto.randomUUID()}`;
    const key = `k-${crypto.randomUUID()}`;
    let first = true;
    intercept(SEND_STATEMENT, async (forward) => {
      const answer = await forward();
      if (!first) return answer;
      first = false;
      await answer.text();
      throw lost();
    });
    const pair = freshPair();
    const a = await send({ ...SMS, ...pair, body }, { "idempotency-key": key });
    const b = await send({ ...SMS, ...pair, body }, { "idempotency-key": key });
    expect([a.res.status, b.res.status]).toEqual([201, 201]);
    expect(b.body.id).toBe(a.body.id);
    expect(b.res.headers.get("idempotent-replayed")).toBe("true");
    expect(await rowsWithBody(body)).toHaveLength(1);
  });

  it("its commit answered by Postgres going away (57P01 during an immediate shutdown): the fence says stored, so 201", async () => {
    // Found by the chaos suite: a send during `pg_ctl stop -m immediate` committed, its answer
    // was the shutdown's error, and the route called that "not stored" (plain 503).
    const body = `shutdown answer ${crypto.randomUUID()}`;
    intercept(SEND_STATEMENT, async (forward) => {
      await (await forward()).text(); // committed
      const shutdown = { message: "terminating connection due to immediate shutdown command", code: "57P01", severity: "FATAL" };
      return new Response(JSON.stringify(shutdown), { status: 400, headers: { "content-type": "application/json" } });
    });
    const { res, body: message } = await send({ ...SMS, ...freshPair(), body });
    expect(res.status).toBe(201);
    expect(await rowsWithBody(body)).toEqual([{ id: message.id }]);
  });

  it("a send that never reached Postgres: the fence is taken as abandoned (plain 503, nothing stored), and the statement arriving late cannot commit", async () => {
    const body = `late statement ${crypto.randomUUID()}`;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let late: Promise<Response> | undefined;
    intercept(SEND_STATEMENT, async (forward) => {
      // The request is still on its way when the route gives up on it.
      late = held.then(forward);
      throw lost();
    });
    const { res, body: answer } = await send({ ...SMS, ...freshPair(), body });
    expect(res.status).toBe(503);
    expect(answer).toMatchObject({ error: "service_unavailable", details: null });
    release();
    const arrived = await late!;
    expect(arrived.status).toBe(400); // the fence's primary key: the statement rolled back
    expect(await rowsWithBody(body)).toEqual([]);
  });

  it("when even the fence cannot be asked: 503 naming the message id as may-have-been-stored, and that is the truth", async () => {
    const body = `unknowable ${crypto.randomUUID()}`;
    intercept(SEND_STATEMENT, async (forward) => {
      await (await forward()).text();
      throw lost();
    });
    const realFetchForFence = neonConfig.fetchFunction as (url: string, init: RequestInit) => Promise<Response>;
    neonConfig.fetchFunction = async (url: string, init: RequestInit) => {
      if (typeof init?.body === "string" && init.body.includes(FENCE_CHECK)) throw lost();
      return realFetchForFence(url, init);
    };
    const { res, body: answer } = await send({ ...SMS, ...freshPair(), body });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(answer.details).toEqual({ message_id: expect.any(String), may_have_been_stored: true });
    expect(await rowsWithBody(body)).toEqual([{ id: answer.details.message_id }]);
  });
});

describe("Postgres enforces the send's time limit", () => {
  afterEach(async () => {
    await sql("drop trigger if exists slow_send on messages; drop function if exists slow_send()");
  });

  it("a statement slower than its share of the deadline is rolled back by Postgres: 503, nothing stored", async () => {
    const body = `slow ${crypto.randomUUID()}`;
    await sql(`create or replace function slow_send() returns trigger language plpgsql as $$
      begin if new.body = '${body}' then perform pg_sleep(2); end if; return new; end $$;
      create trigger slow_send before insert on messages for each row execute function slow_send()`);
    const { res, body: answer } = await send({ ...SMS, ...freshPair(), body }, {}, { REQUEST_DEADLINE_MS: "2000" });
    expect(res.status).toBe(503);
    expect(answer).toMatchObject({ error: "service_unavailable", details: null });
    expect(await rowsWithBody(body)).toEqual([]);
  });
});

describe("refusals before anything is stored", () => {
  afterEach(async () => {
    await sql("drop trigger if exists slow_send on messages; drop function if exists slow_send()");
  });

  it("over MAX_SENDS_IN_FLIGHT a send is refused at once with 503 overloaded and Retry-After, and stores nothing", async () => {
    const tag = `overload ${crypto.randomUUID()}`;
    await sql(`create or replace function slow_send() returns trigger language plpgsql as $$
      begin if new.body like '${tag}%' then perform pg_sleep(0.5); end if; return new; end $$;
      create trigger slow_send before insert on messages for each row execute function slow_send()`);
    const limit = { MAX_SENDS_IN_FLIGHT: "1" };
    const results = await Promise.all([0, 1, 2].map((i) => send({ ...SMS, ...freshPair(), body: `${tag} ${i}` }, {}, limit)));
    const statuses = results.map((r) => r.res.status).sort();
    expect(statuses).toEqual([201, 503, 503]);
    for (const refused of results.filter((r) => r.res.status === 503)) {
      expect(refused.body.error).toBe("overloaded");
      expect(refused.res.headers.get("retry-after")).toBe("1");
    }
    const stored = await sql<{ body: string }>("select body from messages where body like $1", [`${tag}%`]);
    expect(stored.map((r) => r.body)).toEqual([results.find((r) => r.res.status === 201)!.body.body]);
  });

  it("at capacity, a retry whose Idempotency-Key already stored its message gets that message (201 replay), not 'overloaded'", async () => {
    // Found by the chaos suite: keyed retries were told "nothing was stored" for up to 40 s while
    // their key's message was stored and delivered.
    const tag = `overload keyed ${crypto.randomUUID()}`;
    const key = `k-${crypto.randomUUID()}`;
    const pair = freshPair();
    const limit = { MAX_SENDS_IN_FLIGHT: "1" };
    const first = await send({ ...SMS, ...pair, body: `${tag} kept` }, { "idempotency-key": key }, limit);
    expect(first.res.status).toBe(201);
    await sql(`create or replace function slow_send() returns trigger language plpgsql as $$
      begin if new.body like '${tag}%' then perform pg_sleep(1); end if; return new; end $$;
      create trigger slow_send before insert on messages for each row execute function slow_send()`);
    const occupying = send({ ...SMS, ...freshPair(), body: `${tag} occupying` }, {}, limit);
    // The occupying send is inside the gate once its row is being inserted (the trigger sleeps).
    for (let i = 0; i < 200; i++) {
      const [busy] = await sql<{ n: number }>("select count(*)::int as n from pg_stat_activity where query like '%insert into messages%' and wait_event = 'PgSleep'");
      if (busy!.n > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const unkeyed = await send({ ...SMS, ...freshPair(), body: `${tag} unkeyed` }, {}, limit);
    const retry = await send({ ...SMS, ...pair, body: `${tag} kept` }, { "idempotency-key": key }, limit);
    expect((await occupying).res.status).toBe(201);
    expect(unkeyed.res.status).toBe(503);
    expect(unkeyed.body.error).toBe("overloaded");
    expect(retry.res.status).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    expect(retry.res.headers.get("idempotent-replayed")).toBe("true");
    const fresh = await send({ ...SMS, ...freshPair(), body: `${tag} new key` }, { "idempotency-key": `k-${crypto.randomUUID()}` }, limit);
    expect(fresh.res.status).toBe(201); // the gate is free again
  });

  it("outside development a type whose provider has no credentials is refused with 503 naming the setting, nothing stored; SMS still works", async () => {
    const production = { ENVIRONMENT: "production", API_KEYS: "prod-key", SENDGRID_API_KEY: "" };
    const auth = { authorization: "Bearer prod-key" };
    const to = `nokey-${crypto.randomUUID()}@example.com`;
    const email = await call("/api/v1/messages/send", jsonRequest("POST", { ...EMAIL, to }, auth), production);
    expect(email.status).toBe(503);
    expect(await email.json()).toEqual({
      error: "provider_not_configured",
      message: "sendgrid cannot send email: set SENDGRID_API_KEY",
      details: { provider: "sendgrid", missing: ["SENDGRID_API_KEY"] },
    });
    expect(await sql("select 1 from messages where to_address = $1", [to])).toEqual([]);
    const sms = await call("/api/v1/messages/send", jsonRequest("POST", { ...SMS, ...freshPair() }, auth), production);
    expect(sms.status).toBe(201);
  });
});

describe("every request has a deadline", () => {
  const hang = { NEON_WS_PROXY: `${blackhole}/v1`, REQUEST_DEADLINE_MS: "1500" };

  it("a read whose database accepts the connection and never answers gets 503 within the deadline", async () => {
    const started = Date.now();
    const res = await call("/api/v1/messages?limit=1", {}, hang);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    // Loose on purpose: what matters is that it ends, near the 1.5 s deadline, not minutes later.
    expect(Date.now() - started).toBeLessThan(1500 + 3000);
  });

  it("a send whose database hangs gets the documented may-have-been-stored 503 within the deadline", async () => {
    const started = Date.now();
    const { res, body } = await send({ ...SMS, ...freshPair() }, {}, hang);
    expect(res.status).toBe(503);
    expect(body.details).toMatchObject({ may_have_been_stored: true });
    expect(Date.now() - started).toBeLessThan(1500 + 3000);
  });

  it("a send whose Redis hangs is still answered 201 within the deadline: the shard writes the stream entry later", async () => {
    const started = Date.now();
    const { res, body } = await send({ ...SMS, ...freshPair() }, {}, { UPSTASH_REDIS_REST_URL: `http://${blackhole}`, REQUEST_DEADLINE_MS: "1500" });
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(1500 + 3000);
    expect((await getJson(`/api/v1/messages/${body.id}`)).res.status).toBe(200);
  });
});
