// The Postgres client's error classes: what Postgres says about itself going away (a shutdown, a
// crash, a restart, too many connections) is the database being unavailable (503, retry), not a
// bug of ours (500). Found by the chaos suite: sends during a Postgres restart answered 500.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sql as drizzleSql } from "drizzle-orm";
import { loadConfig } from "../src/config";
import { openDatabase } from "../src/db/client";
import { DatabaseError, DependencyError } from "../src/errors";
import { sql } from "./helpers/db";

describe("database errors", () => {
  it("a connection Postgres terminates mid-statement (57P01) is a DependencyError", async () => {
    const db = openDatabase(loadConfig(env));
    const marker = `terminate-me-${crypto.randomUUID()}`;
    try {
      // The marker in a comment: pg_stat_activity shows the statement's text, not its parameters.
      const running = db.run(drizzleSql.raw(`select pg_sleep(3) /* ${marker} */`)).then(
        () => null,
        (error: unknown) => error,
      );
      let terminated = 0;
      for (let i = 0; i < 50 && terminated === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const rows = await sql<{ n: number }>(
          "select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where query like $1 and pid <> pg_backend_pid()",
          [`%${marker}%`],
        );
        terminated = rows[0]!.n;
      }
      expect(terminated).toBe(1);
      const error = await running;
      expect(error).toBeInstanceOf(DependencyError);
      expect((error as DependencyError).dependency).toBe("database");
    } finally {
      await db.end();
    }
  });

  it("an error of the statement itself (a constraint, bad SQL) stays a DatabaseError with its SQLSTATE", async () => {
    const db = openDatabase(loadConfig(env));
    try {
      const error = await db.run(drizzleSql`select 1/0`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).code).toBe("22012");
    } finally {
      await db.end();
    }
  });
});
