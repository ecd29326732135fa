// The Postgres client. One-shot statements go over Neon's SQL-over-HTTP endpoint (`neon()`): one
// HTTPS round trip each, no connection set-up before the first query, nothing left open. The
// WebSocket Pool is opened only for the two interactive transactions that read, decide in code and
// write (a PATCH of a message or a conversation), and for benchmarking the two transports side by
// side (DATABASE_TRANSPORT=websocket).
//
// Every statement runs with `statement_timeout` set in its own transaction, so that Postgres gives
// up (and rolls back) before the client does: a timed-out write is not committed behind the
// caller's back. Errors are typed: a statement Postgres refused is a DatabaseError (SQLSTATE), a
// server that is unreachable or gave no answer is a DependencyError, with `outcomeUnknown` when the
// statement may have committed without our hearing of it.
import { neon, neonConfig, NeonDbError, Pool, type NeonQueryFunction } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import { PgDialect } from "drizzle-orm/pg-core";
import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import { AppError, DatabaseError, DependencyError } from "../errors";
import { boundedTimeout } from "../deadline";
import * as schema from "./schema";

export type Db = NeonDatabase<typeof schema>;

export interface RunOptions {
  /** the statement's own limit, enforced by Postgres (default DB_TIMEOUT_MS, within the deadline) */
  timeoutMs?: number;
  /** how long the client waits for the answer; longer than `timeoutMs` (default: 1 s longer, within the deadline) */
  answerWithinMs?: number;
  /** also give up waiting for a row lock after this long (SQLSTATE 55P03) */
  lockTimeoutMs?: number;
}

export interface Database {
  /** one statement, one round trip, its own transaction; rows as objects */
  run<T = Record<string, unknown>>(query: SQL, options?: RunOptions): Promise<T[]>;
  /** an interactive transaction (WebSocket pool): only where code must decide between statements */
  transaction<T>(work: (tx: Db) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

/** How much longer than the statement's own timeout the client waits for its answer. */
const ANSWER_MARGIN_MS = 1000;

let proxyConfigured: string | undefined;

/**
 * Development: where dev/neon-proxy.ts serves Neon's SQL-over-HTTP endpoint, on the same server and
 * port as its WebSocket relay: "127.0.0.1:8078/v1" → "http://127.0.0.1:8078/sql". Production keeps
 * the driver's default (https://api.<endpoint host>/sql).
 */
export function neonHttpEndpoint(wsProxy: string): string {
  const authority = wsProxy.replace(/^[a-z]+:\/\//i, "").split(/[/?#]/, 1)[0] ?? "";
  if (!authority) throw new Error(`NEON_WS_PROXY has no host:port: "${wsProxy}"`);
  return `http://${authority}/sql`;
}

export function configureNeon(config: Pick<Config, "NEON_WS_PROXY">) {
  // Development and tests only: talk to plain Postgres through dev/neon-proxy.ts, which serves
  // both the WebSocket relay (/v1) and the SQL-over-HTTP endpoint (/sql) on one port.
  if (config.NEON_WS_PROXY && proxyConfigured !== config.NEON_WS_PROXY) {
    const proxy = config.NEON_WS_PROXY;
    neonConfig.wsProxy = (host: string, port: number | string) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
    neonConfig.fetchEndpoint = neonHttpEndpoint(proxy);
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
/**
 * Of those, the ones that can end a session that had already sent its COMMIT: the server was shut
 * down, crashed or dropped the connection while the commit may have been reaching the WAL, so the
 * statement may have committed. (08001/08004: no session was ever made; 53300: refused at login.)
 */
const MID_SESSION_SQLSTATE = /^(08000|08003|08006|08007|57P0[1-3])$/;
/** query_canceled: our statement_timeout fired, so Postgres rolled the statement back. */
const STATEMENT_TIMEOUT = "57014";

/**
 * `answered`: the server answered this request (so a statement without an SQLSTATE in the answer was
 * still not committed); otherwise a failure without an SQLSTATE leaves the outcome unknown.
 */
function wrap(error: unknown, answered = false): unknown {
  if (error instanceof DependencyError || error instanceof AppError || error instanceof DatabaseError) return error;
  const root = rootCause(error);
  const message = root instanceof Error ? root.message : String(root);
  const code = sqlState(error);
  if (code === STATEMENT_TIMEOUT) return new DependencyError("database", "statement timed out and was rolled back", root);
  // Postgres answered with an SQLSTATE (a constraint, a check): the caller's to interpret, unless
  // it says the server is going away or cannot take us now. Either way nothing was committed.
  if (code && !UNAVAILABLE_SQLSTATE.test(code)) return new DatabaseError(code, message, (root as { constraint?: string }).constraint);
  if (code) return new DependencyError("database", message, root, { outcomeUnknown: MID_SESSION_SQLSTATE.test(code) });
  // No SQLSTATE: the request failed on the way or its answer was lost; it may have committed.
  return new DependencyError("database", message, root, { outcomeUnknown: !answered });
}

/** A Neon HTTP error that is the endpoint's own answer (HTTP status, no SQLSTATE): nothing ran to commit. */
const endpointRefused = (error: unknown) => error instanceof NeonDbError && /^Server error \(HTTP status \d+\)/.test(error.message) && !error.code;

const dialect = new PgDialect();

/** `deadline` (epoch ms): a statement's default limit is shortened so that its answer comes before it. */
export function openDatabase(config: Config, deadline?: number): Database {
  configureNeon(config);
  const http: NeonQueryFunction<false, false> = neon(config.DATABASE_URL);
  let pool: Pool | undefined;
  let ended = false;

  function drizzleOverPool(): Db {
    pool ??= new Pool({ connectionString: config.DATABASE_URL, max: 1, connectionTimeoutMillis: config.DB_TIMEOUT_MS });
    // An idle client's socket error must not become an unhandled rejection.
    pool.on("error", () => undefined);
    return drizzle({ client: pool, schema });
  }

  async function runOverPool<T>(query: SQL, timeoutMs: number, lockTimeoutMs: number | undefined): Promise<T[]> {
    return drizzleOverPool().transaction(async (tx) => {
      await tx.execute(setLimits(timeoutMs, lockTimeoutMs));
      return (await tx.execute(query)).rows as T[];
    });
  }

  return {
    async run<T>(query: SQL, options: RunOptions = {}) {
      // Postgres gives up first, then the client: a statement that timed out was rolled back.
      const answerWithinMs = options.answerWithinMs ?? boundedTimeout(config.DB_TIMEOUT_MS + ANSWER_MARGIN_MS, deadline);
      const timeoutMs = options.timeoutMs ?? Math.max(50, Math.min(config.DB_TIMEOUT_MS, answerWithinMs - Math.min(ANSWER_MARGIN_MS, answerWithinMs / 3)));
      try {
        if (config.DATABASE_TRANSPORT === "websocket") {
          return await withDeadline(runOverPool<T>(query, timeoutMs, options.lockTimeoutMs), answerWithinMs);
        }
        const { sql: text, params } = dialect.sqlToQuery(query);
        const limits = dialect.sqlToQuery(setLimits(timeoutMs, options.lockTimeoutMs));
        const results = await http.transaction([http.query(limits.sql, limits.params), http.query(text, params)], {
          fetchOptions: { signal: AbortSignal.timeout(answerWithinMs) },
        });
        return results[1] as T[];
      } catch (error) {
        throw wrap(error, endpointRefused(error));
      }
    },
    async transaction<T>(work: (tx: Db) => Promise<T>) {
      try {
        return await withDeadline(
          drizzleOverPool().transaction(async (tx) => {
            await tx.execute(setLimits(config.DB_TIMEOUT_MS));
            return work(tx as unknown as Db);
          }),
          config.DB_TIMEOUT_MS + ANSWER_MARGIN_MS,
        );
      } catch (error) {
        throw wrap(error);
      }
    },
    async end() {
      if (ended) return;
      ended = true;
      await pool?.end().catch(() => undefined);
    },
  };
}

/** `set_config(..., true)`: the limits hold for this transaction only, as a pooled connection requires. */
function setLimits(timeoutMs: number, lockTimeoutMs?: number): SQL {
  return lockTimeoutMs === undefined
    ? sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`
    : sql`select set_config('statement_timeout', ${String(timeoutMs)}, true), set_config('lock_timeout', ${String(lockTimeoutMs)}, true)`;
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyError("database", `no answer within ${ms} ms`, undefined, { outcomeUnknown: true })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => timer !== undefined && clearTimeout(timer));
}
