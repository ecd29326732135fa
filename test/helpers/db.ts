// Direct SQL for tests that arrange a state the API cannot (time passing, a crashed worker).
import { env } from "cloudflare:test";
import { Pool } from "@neondatabase/serverless";
import { configureNeon } from "../../src/db/client";

export async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  configureNeon({ NEON_WS_PROXY: env.NEON_WS_PROXY });
  const pool = new Pool({ connectionString: env.DATABASE_URL });
  pool.on("error", () => undefined);
  try {
    const result = await pool.query(text, params);
    return result.rows as T[];
  } finally {
    await pool.end();
  }
}
