// `npm run db:migrate`: applies migrations/ (creating the database when missing). Neon's advice:
// migrations over a direct connection, not through the pooler (PgBouncer in transaction mode would
// not keep the session-level advisory lock, nor the migrator's session state, on one backend). So
// DATABASE_URL_UNPOOLED (Neon's direct host, without "-pooler") when set, else DATABASE_URL.
import { applyMigrations, ensureDatabase } from "./db.ts";

export function migrationUrl(env: NodeJS.ProcessEnv = process.env): { url: string; source: string } {
  if (env.DATABASE_URL_UNPOOLED?.trim()) return { url: env.DATABASE_URL_UNPOOLED.trim(), source: "DATABASE_URL_UNPOOLED" };
  if (env.DATABASE_URL?.trim()) return { url: env.DATABASE_URL.trim(), source: "DATABASE_URL" };
  return { url: "postgres://root@127.0.0.1:5432/messaging", source: "the local default" };
}

const { url, source } = migrationUrl();
console.log(`migrating through ${source} (${new URL(url).host})`);
const created = await ensureDatabase(url).catch((error: unknown) => {
  // A managed database (Neon) exists already and its role may not list pg_database: go on.
  console.warn(`could not check or create the database: ${String(error)}`);
  return false;
});
if (created) console.log(`created database ${new URL(url).pathname.slice(1)}`);
await applyMigrations(url);
console.log("migrations applied");
