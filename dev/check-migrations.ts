// `npm run db:check`: proves the migrations are safe to run twice and on a database that holds
// data: a fresh database, migrate, insert a conversation and a message, migrate again (twice, at
// the same time), and the data is intact. Prints PASS/FAIL; exit code 0 only if all pass.
import { readFileSync } from "node:fs";
import pg from "pg";
import { applyMigrations, dropDatabase, ensureDatabase } from "./db.ts";

const base = process.env.CHECK_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/postgres";
const url = Object.assign(new URL(base), { pathname: `/msg_migrations_${process.pid}` }).toString();
let failures = 0;
const check = (ok: boolean, name: string, detail = "") => {
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures++;
};

try {
  await ensureDatabase(url);
  await applyMigrations(url);
  check(true, "migrations on a fresh database");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`insert into conversations (id, participant_from, participant_to, channel_type, type, direct_key, message_count)
      values ('00000000-0000-7000-8000-000000000001', '+15551234567', '+15559876543', 'sms', 'direct', 'phone:+15551234567|+15559876543', 1)`);
    await client.query(`insert into messages (id, conversation_id, provider, direction, status, type, from_address, to_address, body)
      values ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'twilio', 'outbound', 'sent', 'sms', '+15551234567', '+15559876543', 'kept')`);
    await Promise.all([applyMigrations(url), applyMigrations(url)]);
    check(true, "migrations twice more, concurrently, on a populated database");
    const { rows } = await client.query("select body, status from messages where id = '00000000-0000-7000-8000-000000000002'");
    check(rows[0]?.body === "kept" && rows[0]?.status === "sent", "data intact", JSON.stringify(rows[0]));
    const journal = JSON.parse(readFileSync(new URL("../migrations/meta/_journal.json", import.meta.url), "utf8")) as { entries: unknown[] };
    const { rows: applied } = await client.query("select count(*)::int as n from drizzle.__drizzle_migrations");
    check(applied[0].n === journal.entries.length, "each migration recorded once", `${applied[0].n} rows for ${journal.entries.length} migrations`);
  } finally {
    await client.end();
  }
} catch (error) {
  check(false, "migrations", String(error));
} finally {
  await dropDatabase(url).catch(() => undefined);
}
process.exit(failures === 0 ? 0 : 1);
