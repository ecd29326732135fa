// Proves that the real `@neondatabase/serverless` driver (Pool, Client, drizzle), running in the
// Workers runtime, reaches a real Postgres 15 through the dev Neon WebSocket proxy
// (dev/neon-proxy.ts) with Postgres' types, transactions and errors intact.
import { env } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, DatabaseError, Pool, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import { eq, sql } from "drizzle-orm";
import { integer, jsonb, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { FrontendMessageCounter } from "../../dev/pg-message-counter.ts";

const { NEON_WS_PROXY: wsProxy, DATABASE_URL: databaseUrl } = env as unknown as {
  NEON_WS_PROXY: string;
  DATABASE_URL: string;
};

// The development settings the Worker uses (docs/architecture.md section 7).
neonConfig.wsProxy = (host, port) => `${wsProxy}?address=${host}:${port}`;
neonConfig.useSecureWebSocket = false;
neonConfig.pipelineTLS = false;
neonConfig.pipelineConnect = false;

// Every table of this file lives in a schema of its own, dropped at the end.
const schema = `bridge_test_${crypto.randomUUID().replaceAll("-", "")}`;
const table = (name: string) => `"${schema}"."${name}"`;

// workerd fires an `error` event ("Network connection lost.") on a WebSocket after the server
// closes it, even after a clean close handshake, and the driver only ever closes from the server
// side (Postgres hangs up after Terminate). Without a listener that event is an uncaught exception,
// so every Client/Pool here gets one; anything else it sees fails the run in afterAll.
const unexpectedErrors: Error[] = [];
function listened<T extends Client | Pool>(driver: T): T {
  driver.on("error", (error: Error) => {
    if (!/Network connection lost/.test(error.message)) unexpectedErrors.push(error);
  });
  return driver;
}
const newPool = () => listened(new Pool({ connectionString: databaseUrl }));

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = listened(new Client(databaseUrl));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await withClient((c) => c.query(`create schema "${schema}"`));
});

afterAll(async () => {
  await withClient((c) => c.query(`drop schema "${schema}" cascade`));
  expect(unexpectedErrors).toEqual([]);
});

describe("Pool", () => {
  it("runs parameterised queries and maps timestamptz→Date, jsonb→object, bigint→string, uuid, arrays and null", async () => {
    const pool = newPool();
    try {
      const { rows } = await pool.query(
        `select $1::timestamptz as at, $2::jsonb as doc, $3::bigint as big, $4::uuid as id,
                $5::text[] as tags, $6::int[] as numbers, $7::text as nothing, $8::int as n,
                true as yes, 12.50::numeric as amount, '\\x00ff'::bytea as bytes`,
        [
          "2024-03-01T12:34:56.789Z",
          JSON.stringify({ to: "+15550001111", nested: { ok: true, list: [1, "two"] } }),
          "9007199254740993",
          "0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11",
          ["a", "b,c", 'quote"d', "ünï 👋"],
          [1, 2, 3],
          null,
          41,
        ],
      );
      const row = rows[0]!;
      expect(row.at).toBeInstanceOf(Date);
      expect((row.at as Date).toISOString()).toBe("2024-03-01T12:34:56.789Z");
      expect(row.doc).toEqual({ to: "+15550001111", nested: { ok: true, list: [1, "two"] } });
      expect(row.big).toBe("9007199254740993");
      expect(row.id).toBe("0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11");
      expect(row.tags).toEqual(["a", "b,c", 'quote"d', "ünï 👋"]);
      expect(row.numbers).toEqual([1, 2, 3]);
      expect(row.nothing).toBeNull();
      expect(row.n).toBe(41);
      expect(row.yes).toBe(true);
      expect(row.amount).toBe("12.50");
      expect([...(row.bytes as Uint8Array)]).toEqual([0, 255]);
    } finally {
      await pool.end();
    }
  });

  it("answers large results and several statements in one simple query", async () => {
    const pool = newPool();
    try {
      const big = await pool.query("select repeat('x', 2000000) as s, generate_series(1, 3) as i");
      expect(big.rows.map((r) => [r.s.length, r.i])).toEqual([[2_000_000, 1], [2_000_000, 2], [2_000_000, 3]]);
      const multi = (await pool.query("select 1 as a; select 'two' as b")) as unknown as { rows: unknown[] }[];
      expect(multi.map((r) => r.rows)).toEqual([[{ a: 1 }], [{ b: "two" }]]);
    } finally {
      await pool.end();
    }
  });
});

describe("Client", () => {
  it("a committed transaction is visible afterwards and a rolled-back one leaves nothing", async () => {
    const accounts = table(`accounts_${crypto.randomUUID().slice(0, 8)}`);
    await withClient(async (c) => {
      await c.query(`create table ${accounts} (id int primary key, balance bigint not null)`);
      await c.query("begin");
      await c.query(`insert into ${accounts} values ($1, $2), ($3, $4)`, [1, 100, 2, 50]);
      await c.query("commit");

      await c.query("begin");
      await c.query(`update ${accounts} set balance = balance - 70 where id = 1`);
      await c.query(`insert into ${accounts} values (3, 0)`);
      await c.query("rollback");
    });
    // A fresh connection sees exactly the committed state.
    const rows = await withClient(async (c) => (await c.query(`select id, balance from ${accounts} order by id`)).rows);
    expect(rows).toEqual([{ id: 1, balance: "100" }, { id: 2, balance: "50" }]);
  });

  it("a unique violation is a DatabaseError with code 23505 and the constraint name; the connection stays usable", async () => {
    const users = table(`users_${crypto.randomUUID().slice(0, 8)}`);
    await withClient(async (c) => {
      await c.query(`create table ${users} (email text constraint users_email_key unique)`);
      await c.query(`insert into ${users} values ($1)`, ["a@example.com"]);
      const error = await c.query(`insert into ${users} values ($1)`, ["a@example.com"]).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error).toMatchObject({ code: "23505", constraint: "users_email_key" });
      expect(String((error as Error).message)).toMatch(/duplicate key value violates unique constraint/);
      expect((await c.query("select 1 as still_alive")).rows).toEqual([{ still_alive: 1 }]);
    });
  });
});

describe("drizzle (neon-serverless)", () => {
  it("runs typed inserts/selects and a transaction that commits and one that rolls back", async () => {
    const messages = pgSchema(schema).table(`messages_${crypto.randomUUID().slice(0, 8)}`, {
      id: uuid("id").primaryKey().defaultRandom(),
      body: text("body").notNull(),
      attempts: integer("attempts").notNull().default(0),
      meta: jsonb("meta").$type<{ channel: string }>(),
      createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    });
    const pool = newPool();
    try {
      const db = drizzle({ client: pool });
      await db.execute(sql`create table ${messages} (
        id uuid primary key default gen_random_uuid(), body text not null,
        attempts integer not null default 0, meta jsonb, created_at timestamptz not null default now())`);

      const [inserted] = await db.insert(messages).values({ body: "hello", meta: { channel: "sms" } }).returning();
      expect(inserted!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(inserted!.createdAt).toBeInstanceOf(Date);
      expect(inserted!.meta).toEqual({ channel: "sms" });

      await db.transaction(async (tx) => {
        await tx.update(messages).set({ attempts: sql`${messages.attempts} + 1` }).where(eq(messages.id, inserted!.id));
        await tx.insert(messages).values({ body: "second" });
      });
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(messages).values({ body: "never" });
          tx.rollback();
        }),
      ).rejects.toThrow(/Rollback/);

      const rows = await db
        .select({ body: messages.body, attempts: messages.attempts })
        .from(messages)
        .orderBy(messages.body);
      expect(rows).toEqual([{ body: "hello", attempts: 1 }, { body: "second", attempts: 0 }]);
    } finally {
      await pool.end();
    }
  });
});

describe("proxy", () => {
  it("refuses to dial hosts outside allowedHosts and paths other than /v1", async () => {
    const upgrade = { headers: { Upgrade: "websocket" } };
    const forbidden = await fetch(`http://${wsProxy}?address=10.0.0.1:5432`, upgrade);
    expect(forbidden.status).toBe(403);
    const malformed = await fetch(`http://${wsProxy}?address=nonsense`, upgrade);
    expect(malformed.status).toBe(400);
    const wrongPath = await fetch(`http://${wsProxy.replace(/\/v1$/, "/v2")}?address=127.0.0.1:5432`, upgrade);
    expect(wrongPath.status).toBe(404);
  });

  it("counts queries as simple 'Q' plus extended-protocol Sync messages, however frames cut the stream", () => {
    const encoder = new TextEncoder();
    const message = (type: string, body: Uint8Array) => {
      const out = new Uint8Array(5 + body.length);
      out[0] = type.charCodeAt(0);
      new DataView(out.buffer).setInt32(1, 4 + body.length);
      out.set(body, 5);
      return out;
    };
    const untyped = (code: number, body: Uint8Array) => {
      const out = new Uint8Array(8 + body.length);
      new DataView(out.buffer).setInt32(0, 8 + body.length);
      new DataView(out.buffer).setInt32(4, code);
      out.set(body, 8);
      return out;
    };
    const parts = [
      untyped(80877103, new Uint8Array()), // SSLRequest, answered 'N'
      untyped(196608, encoder.encode("user\0root\0database\0x\0\0")), // StartupMessage 3.0
      message("Q", encoder.encode("select 1\0")),
      message("P", encoder.encode("\0select $1\0\0\0")),
      message("B", new Uint8Array(12)),
      message("D", encoder.encode("P\0")),
      message("E", new Uint8Array(5)),
      message("S", new Uint8Array()),
      message("Q", encoder.encode(`select '${"x".repeat(70_000)}'\0`)),
      message("X", new Uint8Array()),
    ];
    const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((offset, p) => (stream.set(p, offset), offset + p.length), 0);

    for (const frameSize of [1, 2, 5, 7, 13, 4096, stream.length]) {
      const seen: (string | null)[] = [];
      const counter = new FrontendMessageCounter((type) => seen.push(type));
      for (let i = 0; i < stream.length; i += frameSize) counter.push(stream.subarray(i, i + frameSize));
      expect(seen).toEqual([null, null, "Q", "P", "B", "D", "E", "S", "Q", "X"]);
    }
  });
});
