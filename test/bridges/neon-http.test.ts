// Proves that the real `@neondatabase/serverless` HTTP driver (`neon()`, `transaction()`) and
// drizzle-orm/neon-http, running in the Workers runtime, get from the dev proxy's SQL-over-HTTP
// endpoint (dev/neon-http.ts, `POST /sql` beside the WebSocket relay) over a real Postgres 15 what
// they get from Neon: types parsed from raw text, NeonDbErrors with SQLSTATE and constraint,
// all-or-nothing batches with the requested transaction modes.
import { env } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import { eq } from "drizzle-orm";
import { integer, jsonb, pgSchema, text, uuid } from "drizzle-orm/pg-core";
import { neonHttpEndpoint } from "../../src/db/client";

const { NEON_WS_PROXY: wsProxy, DATABASE_URL: databaseUrl } = env as unknown as {
  NEON_WS_PROXY: string;
  DATABASE_URL: string;
};

// The development setting the Worker uses for the HTTP path.
const endpoint = neonHttpEndpoint(wsProxy);
neonConfig.fetchEndpoint = () => endpoint;

const sql = neon(databaseUrl);

// Every table of this file lives in a schema of its own, dropped at the end.
const schema = `bridge_http_${crypto.randomUUID().replaceAll("-", "")}`;
const uniqueName = (name: string) => `${name}_${crypto.randomUUID().slice(0, 8)}`;
const table = (name: string) => `"${schema}"."${uniqueName(name)}"`;

/** The rejection of a promise that must fail. */
async function failure(promise: Promise<unknown>): Promise<NeonDbError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NeonDbError);
  return error as NeonDbError;
}

beforeAll(async () => {
  await sql.query(`create schema "${schema}"`);
});

afterAll(async () => {
  await sql.query(`drop schema "${schema}" cascade`);
});

describe("types", () => {
  it("parses integer, bigint, numeric, boolean, text, uuid, timestamptz, date, json(b), arrays and NULL from Postgres' text output", async () => {
    const [row] = await sql.query(`select 41::int as n, 9007199254740993::bigint as big, 12.50::numeric as amount,
      true as yes, false as no, 'ünï 👋'::text as txt, '0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11'::uuid as id,
      '2024-03-01 12:34:56.789+00'::timestamptz as at, '2024-03-01'::date as day,
      '{"a": [1, "two", null], "ü": "👋"}'::json as doc, '["x", {"y": 2}]'::jsonb as list, '"ünï 👋"'::jsonb as str,
      '{a,"b,c","quote\\"d",NULL}'::text[] as tags, '{1,2,3}'::int[] as numbers,
      '{0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11}'::uuid[] as ids, null::int as nothing, null::jsonb as no_doc`);
    expect(row).toEqual({
      n: 41,
      big: "9007199254740993",
      amount: "12.50",
      yes: true,
      no: false,
      txt: "ünï 👋",
      id: "0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11",
      at: new Date("2024-03-01T12:34:56.789Z"),
      day: new Date("2024-03-01T00:00:00.000Z"),
      doc: { a: [1, "two", null], ü: "👋" },
      list: ["x", { y: 2 }],
      str: "ünï 👋",
      tags: ["a", "b,c", 'quote"d', null],
      numbers: [1, 2, 3],
      ids: ["0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11"],
      nothing: null,
      no_doc: null,
    });
  });

  it("binds each type as a parameter, NULLs included, and gets the same values back from a table", async () => {
    const things = table("things");
    await sql.query(`create table ${things} (
      n int, big bigint, amount numeric(10,2), yes boolean, txt text, id uuid, at timestamptz, day date,
      doc json, meta jsonb, tags text[], numbers int[], ids uuid[])`);
    const values = [
      41,
      "9007199254740993",
      "12.50",
      true,
      "ünï 👋 'quoted' \"double\"",
      "0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11",
      new Date("2024-03-01T12:34:56.789Z"),
      "2024-03-01",
      { to: "+15550001111", nested: { ok: true, list: [1, "two", null] }, text: "ünï 👋" },
      ["ünï 👋", { y: 2 }],
      ["a", "b,c", 'quote"d', "ünï 👋", null],
      [1, 2, 3],
      ["0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11", "5f0c6b1e-1111-4222-8333-944455556666"],
    ];
    // Objects and arrays go as JSON, as the driver serialises them: the json array as a string.
    const params = values.map((v, i) => (i === 9 ? JSON.stringify(v) : v));
    const inserted = await sql.query(
      `insert into ${things} values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
      params,
    );
    const nulls = await sql.query(
      `insert into ${things} values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
      values.map(() => null),
    );
    const expected = {
      n: 41,
      big: "9007199254740993",
      amount: "12.50",
      yes: true,
      txt: "ünï 👋 'quoted' \"double\"",
      id: "0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11",
      at: new Date("2024-03-01T12:34:56.789Z"),
      day: new Date("2024-03-01T00:00:00.000Z"),
      doc: { to: "+15550001111", nested: { ok: true, list: [1, "two", null] }, text: "ünï 👋" },
      meta: ["ünï 👋", { y: 2 }],
      tags: ["a", "b,c", 'quote"d', "ünï 👋", null],
      numbers: [1, 2, 3],
      ids: ["0b6b5a3e-1c1f-4d6a-9a3e-2f0c9e6b7d11", "5f0c6b1e-1111-4222-8333-944455556666"],
    };
    expect(inserted).toEqual([expected]);
    expect(nulls).toEqual([Object.fromEntries(Object.keys(expected).map((k) => [k, null]))]);
    expect(await sql.query(`select * from ${things} order by n nulls last`)).toEqual([expected, nulls[0]]);
  });

  it("answers fullResults (command, rowCount, fields with type OIDs) and arrayMode rows", async () => {
    const rows = table("rows");
    await sql.query(`create table ${rows} (id int primary key, label text)`);
    const full = neon(databaseUrl, { fullResults: true });
    const insert = await full.query(`insert into ${rows} values (1, 'one'), (2, 'two')`);
    expect(insert).toMatchObject({ command: "INSERT", rowCount: 2, rows: [], fields: [], rowAsArray: false });

    const select = await full.query(`select id, label from ${rows} order by id`);
    expect(select.command).toBe("SELECT");
    expect(select.rowCount).toBe(2);
    expect(select.rows).toEqual([{ id: 1, label: "one" }, { id: 2, label: "two" }]);
    expect(select.fields.map(({ name, dataTypeID, format }) => ({ name, dataTypeID, format }))).toEqual([
      { name: "id", dataTypeID: 23, format: "text" },
      { name: "label", dataTypeID: 25, format: "text" },
    ]);
    expect(select.fields[0]).toMatchObject({ columnID: 1, dataTypeSize: 4, dataTypeModifier: -1 });
    expect(select.fields[0]!.tableID).toBeGreaterThan(0);

    const asArrays = neon(databaseUrl, { arrayMode: true });
    expect(await asArrays.query(`select id, label from ${rows} order by id`)).toEqual([[1, "one"], [2, "two"]]);
    const update = await full.query(`update ${rows} set label = upper(label)`);
    expect(update).toMatchObject({ command: "UPDATE", rowCount: 2 });
    expect(await full.query(`create table ${table("empty")} (x int)`)).toMatchObject({ command: "CREATE", rowCount: null });
  });
});

describe("errors", () => {
  it("a unique violation is a NeonDbError with code 23505, the constraint, table and schema", async () => {
    const bare = uniqueName("users");
    const users = `"${schema}"."${bare}"`;
    await sql.query(`create table ${users} (email text constraint users_email_key unique)`);
    await sql.query(`insert into ${users} values ($1)`, ["a@example.com"]);
    const error = await failure(sql.query(`insert into ${users} values ($1)`, ["a@example.com"]));
    expect(error).toMatchObject({
      name: "NeonDbError",
      message: 'duplicate key value violates unique constraint "users_email_key"',
      code: "23505",
      severity: "ERROR",
      detail: "Key (email)=(a@example.com) already exists.",
      constraint: "users_email_key",
      table: bare,
      schema,
    });
  });

  it("a check violation is 23514 with its constraint; a syntax error is 42601 with its position", async () => {
    const amounts = table("amounts");
    await sql.query(`create table ${amounts} (amount int constraint amount_positive check (amount > 0))`);
    const check = await failure(sql.query(`insert into ${amounts} values ($1)`, [-1]));
    expect(check).toMatchObject({ code: "23514", constraint: "amount_positive" });

    const syntax = await failure(sql.query("select 1 frm nowhere"));
    expect(syntax).toMatchObject({ code: "42601", position: "14", message: 'syntax error at or near "nowhere"' });
    expect(syntax.constraint).toBeUndefined();
  });

  it("several statements in one query are refused (42601), as on Neon, where each runs as a prepared statement", async () => {
    const error = await failure(sql.query("select 1; select 2"));
    expect(error).toMatchObject({ code: "42601", message: "cannot insert multiple commands into a prepared statement" });
  });

  it("set local statement_timeout inside transaction() cancels a slow statement with 57014", async () => {
    const error = await failure(sql.transaction([sql`set local statement_timeout = '50ms'`, sql`select pg_sleep(5)`]));
    expect(error).toMatchObject({ code: "57014", message: "canceling statement due to statement timeout" });
    // The timeout was local to that transaction: the pooled connection does not keep it.
    expect(await sql`show statement_timeout`).toEqual([{ statement_timeout: "0" }]);
  });

  it("refuses hosts outside allowedHosts and malformed requests with a 400 the driver turns into a NeonDbError", async () => {
    const refused = await failure(neon("postgresql://root@10.0.0.1:5432/elsewhere")`select 1`);
    expect(refused.message).toBe("invalid hostname: 10.0.0.1 is not in the dev proxy's allowedHosts");

    const post = (headers: Record<string, string>, body: string) =>
      fetch(endpoint, { method: "POST", headers: { "Neon-Raw-Text-Output": "true", ...headers }, body }).then(async (r) => ({
        status: r.status,
        message: ((await r.json()) as { message: string }).message,
      }));
    const query = JSON.stringify({ query: "select 1", params: [] });
    expect(await post({}, query)).toEqual({ status: 400, message: "invalid header: neon-connection-string" });
    expect(await post({ "Neon-Connection-String": "mysql://root@127.0.0.1/db" }, query)).toEqual({ status: 400, message: "incorrect scheme" });
    expect(await post({ "Neon-Connection-String": databaseUrl }, "{not json")).toMatchObject({ status: 400 });
    expect(await post({ "Neon-Connection-String": databaseUrl, "Neon-Batch-Isolation-Level": "Chaotic" }, query)).toEqual({
      status: 400,
      message: "invalid isolation level",
    });
  });
});

describe("transaction()", () => {
  it("commits every statement, or rolls all back and answers the failing statement's error", async () => {
    const bare = uniqueName("accounts");
    const accounts = `"${schema}"."${bare}"`;
    await sql.query(`create table ${accounts} (id int primary key, balance bigint not null)`);
    const results = await sql.transaction([
      sql.query(`insert into ${accounts} values ($1, $2) returning id`, [1, 100]),
      sql.query(`insert into ${accounts} values ($1, $2) returning id`, [2, 50]),
      sql.query(`select sum(balance)::int as total from ${accounts}`),
    ]);
    expect(results).toEqual([[{ id: 1 }], [{ id: 2 }], [{ total: 150 }]]);

    const error = await failure(
      sql.transaction([
        sql.query(`update ${accounts} set balance = balance - 70 where id = 1`),
        sql.query(`insert into ${accounts} values (3, 0)`),
        sql.query(`insert into ${accounts} values (2, 0)`),
      ]),
    );
    expect(error).toMatchObject({ code: "23505", constraint: `${bare}_pkey` });
    expect(await sql.query(`select id, balance from ${accounts} order by id`)).toEqual([
      { id: 1, balance: "100" },
      { id: 2, balance: "50" },
    ]);
  });

  it("honours isolationLevel, readOnly and deferrable; a write in a read-only batch fails with 25006 and writes nothing", async () => {
    const modes = () => [sql`show transaction_isolation`, sql`show transaction_read_only`, sql`show transaction_deferrable`];
    const flatten = (results: Record<string, unknown>[][]) => results.map((rows) => Object.values(rows[0]!)[0]);
    expect(flatten(await sql.transaction(modes()))).toEqual(["read committed", "off", "off"]);
    expect(flatten(await sql.transaction(modes(), { isolationLevel: "RepeatableRead" }))).toEqual(["repeatable read", "off", "off"]);
    expect(flatten(await sql.transaction(modes(), { isolationLevel: "Serializable", readOnly: true, deferrable: true }))).toEqual([
      "serializable",
      "on",
      "on",
    ]);

    const log = table("log");
    await sql.query(`create table ${log} (line text)`);
    const error = await failure(
      sql.transaction([sql.query(`select count(*) from ${log}`), sql.query(`insert into ${log} values ('x')`)], { readOnly: true }),
    );
    expect(error).toMatchObject({ code: "25006", message: "cannot execute INSERT in a read-only transaction" });
    expect(await sql.query(`select count(*)::int as n from ${log}`)).toEqual([{ n: 0 }]);
  });

  it("a request that leaves a transaction open does not hand it to the next request on the pooled connection", async () => {
    await sql`begin isolation level serializable`;
    expect(await sql`show transaction_isolation`).toEqual([{ transaction_isolation: "read committed" }]);
  });
});

describe("drizzle (neon-http)", () => {
  it("runs typed inserts/selects/updates and an all-or-nothing batch", async () => {
    const name = uniqueName("messages");
    const messages = pgSchema(schema).table(name, {
      id: uuid("id").primaryKey().defaultRandom(),
      body: text("body").notNull(),
      attempts: integer("attempts").notNull().default(0),
      meta: jsonb("meta").$type<{ channel: string; note?: string }>(),
    });
    const db = drizzle({ client: sql });
    await sql.query(`create table "${schema}"."${name}" (
      id uuid primary key default gen_random_uuid(), body text not null unique,
      attempts integer not null default 0, meta jsonb)`);

    const [inserted] = await db.insert(messages).values({ body: "hello", meta: { channel: "sms", note: "ünï 👋" } }).returning();
    expect(inserted!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(inserted!.meta).toEqual({ channel: "sms", note: "ünï 👋" });

    const [updated, second] = await db.batch([
      db.update(messages).set({ attempts: 1 }).where(eq(messages.id, inserted!.id)).returning({ attempts: messages.attempts }),
      db.insert(messages).values({ body: "second" }).returning({ body: messages.body }),
    ]);
    expect(updated).toEqual([{ attempts: 1 }]);
    expect(second).toEqual([{ body: "second" }]);

    const error = await failure(db.batch([db.insert(messages).values({ body: "never" }), db.insert(messages).values({ body: "hello" })]));
    expect(error).toMatchObject({ code: "23505", constraint: `${name}_body_key` });
    const rows = await db.select({ body: messages.body, attempts: messages.attempts }).from(messages).orderBy(messages.body);
    expect(rows).toEqual([{ body: "hello", attempts: 1 }, { body: "second", attempts: 0 }]);
  });
});
