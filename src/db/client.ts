// The Postgres client: a Neon WebSocket Pool per request (routes) or per alarm run (the worker),
// ended when the work is done so that nothing keeps an outgoing socket open (DESIGN.md §7).
import { Pool, neonConfig } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type { SQL } from "drizzle-orm";
import type { Config } from "../config";
import { AppError, DatabaseError, DependencyError } from "../errors";
import * as schema from "./schema";

export type Db = NeonDatabase<typeof schema>;

export interface Database {
  /** drizzle over the pool; every statement is bounded by DB_TIMEOUT_MS */
  readonly db: Db;
  /** one statement, one round trip; rows as objects */
  run<T = Record<string, unknown>>(query: SQL): Promise<T[]>;
  /** several statements in one transaction */
  transaction<T>(work: (tx: Db) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

let proxyConfigured: string | undefined;

export function configureNeon(config: Pick<Config, "NEON_WS_PROXY">) {
  // Development and tests only: talk to plain Postgres through dev/neon-proxy.ts.
  if (config.NEON_WS_PROXY && proxyConfigured !== config.NEON_WS_PROXY) {
    const proxy = config.NEON_WS_PROXY;
    neonConfig.wsProxy = (host: string, port: number | string) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
    proxyConfigured = proxy;
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of a Postgres error, looked for through wrappers (drizzle's DrizzleQueryError). */
export function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && SQLSTATE.test(code)) return code;
  }
  return undefined;
}

/** The innermost error: drizzle's wrapper message carries the query and its parameters. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause; depth++) current = current.cause;
  return current;
}

/**
 * SQLSTATEs of a server that is unavailable rather than of a statement that is wrong: connection
 * exceptions (08), too many connections (53300), shutdown, crash and restart (57P01–57P03).
 */
const UNAVAILABLE_SQLSTATE = /^(08...|53300|57P0[1-3])$/;

function wrap(error: unknown): unknown {
  if (error instanceof DependencyError || error instanceof AppError || error instanceof DatabaseError) return error;
  const root = rootCause(error);
  const message = root instanceof Error ? root.message : String(root);
  // Postgres answered with an SQLSTATE (a constraint, a check): the caller's to interpret, unless
  // it says the server is going away or cannot take us now.
  const code = sqlState(error);
  if (code && !UNAVAILABLE_SQLSTATE.test(code)) return new DatabaseError(code, message, (root as { constraint?: string }).constraint);
  // Anything else (connection refused, socket closed, timeout) is the database being unavailable.
  return new DependencyError("database", message, root);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyError("database", `timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => timer !== undefined && clearTimeout(timer));
}

export function openDatabase(config: Config): Database {
  configureNeon(config);
  const pool = new Pool({
    connectionString: config.DATABASE_URL,
    max: 4,
    connectionTimeoutMillis: config.DB_TIMEOUT_MS,
  });
  // An idle client's socket error must not become an unhandled rejection.
  pool.on("error", () => undefined);
  const db = drizzle({ client: pool, schema });
  let ended = false;
  return {
    db,
    async run<T>(query: SQL) {
      try {
        const result = await withTimeout(db.execute(query), config.DB_TIMEOUT_MS);
        return result.rows as T[];
      } catch (error) {
        throw wrap(error);
      }
    },
    async transaction<T>(work: (tx: Db) => Promise<T>) {
      try {
        return await withTimeout(db.transaction((tx) => work(tx as unknown as Db)), config.DB_TIMEOUT_MS * 2);
      } catch (error) {
        throw wrap(error);
      }
    },
    async end() {
      if (ended) return;
      ended = true;
      await pool.end().catch(() => undefined);
    },
  };
}
