// `npm run db:migrate`: applies migrations/ to DATABASE_URL (creating the database when missing).
import { applyMigrations, ensureDatabase } from "./db.ts";

const url = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/messaging";
const created = await ensureDatabase(url).catch((error: unknown) => {
  // A managed database (Neon) exists already and its role may not list pg_database: go on.
  console.warn(`could not check or create the database: ${String(error)}`);
  return false;
});
if (created) console.log(`created database ${new URL(url).pathname.slice(1)}`);
await applyMigrations(url);
console.log("migrations applied");
