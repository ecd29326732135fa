// Direct SQL for tests that arrange a state the API cannot (time passing, a crashed worker).
import { env } from "cloudflare:test";
import { Pool, neonConfig } from "@neondatabase/serverless";

export async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const proxy = env.NEON_WS_PROXY!;
  neonConfig.wsProxy = (host: string, port: number | string) => `${proxy}?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  const pool = new Pool({ connectionString: env.DATABASE_URL });
  pool.on("error", () => undefined);
  try {
    const result = await pool.query(text, params);
    return result.rows as T[];
  } finally {
    await pool.end();
  }
}
