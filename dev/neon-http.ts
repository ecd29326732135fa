// Neon's SQL-over-HTTP endpoint (what `neon()` from @neondatabase/serverless and
// drizzle-orm/neon-http talk to) over a plain Postgres. Served by dev/neon-proxy.ts as `POST /sql`.
//
// The protocol, as the driver (1.2.0) speaks it and Neon's proxy answers it:
// - request: JSON `{query, params}` or, for `transaction()`, `{queries: [{query, params}, ...]}`;
//   headers `Neon-Connection-String` (postgresql://user:pass@host/db?application_name=...),
//   `Neon-Raw-Text-Output: true`, `Neon-Array-Mode: true`, and for a batch
//   `Neon-Batch-Isolation-Level` (ReadUncommitted | ReadCommitted | RepeatableRead | Serializable),
//   `Neon-Batch-Read-Only`, `Neon-Batch-Deferrable` ("true" means true, anything else false).
//   Parameters are JSON: null → NULL, strings as they are, numbers/booleans/objects as their JSON
//   text, arrays as Postgres array literals.
// - answer 200: `{command, rowCount, rows, fields, rowAsArray}` per statement, `{results: [...]}`
//   for a batch; values are Postgres' text output (the driver parses them by type OID), null for NULL.
// - errors: 400 with `{message, code (SQLSTATE), detail, hint, position, severity, schema, table,
//   column, dataType, constraint, where, ...}`, which the driver turns into a NeonDbError field by
//   field; a 5xx body is only text to the driver ("Server error (HTTP status 500): ...").
// Every statement runs through the extended protocol, as on Neon: one statement per query, and
// several statements in one string are a syntax error (42601).
import type http from "node:http";
import { Buffer } from "node:buffer";
import pg from "pg";

export interface SqlOverHttpOptions {
  /** Postgres hosts that connection strings may name */
  allowedHosts: ReadonlySet<string>;
  /** Postgres connections kept per connection string */
  poolSize: number;
}

export interface SqlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface SqlOverHttp {
  /** reads and answers one `POST /sql` */
  answer(req: http.IncomingMessage): Promise<SqlAnswer>;
  /** requests answered and statements asked for (a batch of n counts n), since start or reset */
  stats(): { requests: number; statements: number };
  resetStats(): void;
  close(): Promise<void>;
}

// Neon's defaults (sql_over_http_max_request_size_bytes / _max_response_size_bytes).
const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

const ISOLATION_LEVELS: Record<string, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

// Postgres error fields as node-postgres names them; the driver copies exactly these names.
const ERROR_FIELDS = [
  "code", "detail", "hint", "position", "internalPosition", "internalQuery", "severity", "where",
  "table", "column", "schema", "dataType", "constraint", "file", "line", "routine",
] as const;

// Raw text out: no type parsing in the proxy, the driver parses by OID as it does against Neon.
const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

/** A mistake in the request itself (Neon answers these 400 too, without an SQLSTATE). */
class RequestError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

interface Statement {
  query: string;
  params: (string | null)[];
  arrayMode: boolean | undefined;
}

interface BatchOptions {
  isolationLevel: string | undefined;
  readOnly: boolean;
  deferrable: boolean;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A JSON parameter as Postgres text, the way Neon's proxy converts it. */
function paramText(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return arrayLiteral(value);
  return JSON.stringify(value);
}

function arrayLiteral(value: unknown): string {
  if (value === null) return "NULL";
  if (Array.isArray(value)) return `{${value.map(arrayLiteral).join(",")}}`;
  // Inside an array literal strings are quoted and escaped; JSON's string syntax does both.
  return JSON.stringify(typeof value === "object" ? JSON.stringify(value) : value);
}

function parseStatement(value: unknown): Statement {
  const { query, params = [], arrayMode } = (value ?? {}) as { query?: unknown; params?: unknown; arrayMode?: unknown };
  if (typeof query !== "string") throw new RequestError("request body: `query` must be a string");
  if (!Array.isArray(params)) throw new RequestError("request body: `params` must be an array");
  if (arrayMode !== undefined && typeof arrayMode !== "boolean") throw new RequestError("request body: `arrayMode` must be a boolean");
  return { query, params: params.map(paramText), arrayMode };
}

function parsePayload(body: Buffer): Statement | Statement[] {
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new RequestError(`request body is not JSON: ${(error as Error).message}`);
  }
  if (payload && typeof payload === "object" && "query" in payload) return parseStatement(payload);
  const queries = (payload as { queries?: unknown } | null)?.queries;
  if (!Array.isArray(queries)) throw new RequestError("request body: expected {query, params} or {queries: [...]}");
  return queries.map(parseStatement);
}

function parseBatchOptions(req: http.IncomingMessage): BatchOptions {
  const level = header(req, "neon-batch-isolation-level");
  if (level !== undefined && !(level in ISOLATION_LEVELS)) throw new RequestError("invalid isolation level");
  return {
    isolationLevel: level,
    readOnly: header(req, "neon-batch-read-only") === "true",
    deferrable: header(req, "neon-batch-deferrable") === "true",
  };
}

function beginStatement({ isolationLevel, readOnly, deferrable }: BatchOptions): string {
  const modes = [isolationLevel && `ISOLATION LEVEL ${ISOLATION_LEVELS[isolationLevel]}`, readOnly && "READ ONLY", deferrable && "DEFERRABLE"];
  return ["BEGIN", modes.filter(Boolean).join(", ")].filter(Boolean).join(" ");
}

const isPostgresError = (error: unknown): error is pg.DatabaseError => error instanceof pg.DatabaseError;

/** Reads at most MAX_REQUEST_BYTES; a larger body is drained (not kept) so that the 413 still arrives. */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_REQUEST_BYTES) reject(new RequestError(`request is too large (max is ${MAX_REQUEST_BYTES} bytes)`, 413));
      else resolve(Buffer.concat(chunks));
    });
    req.on("error", reject);
  });
}

/** The error body Neon's proxy answers: every field present, null where Postgres gave none. */
function errorBody(error: Error): Record<string, string | null> {
  const body: Record<string, string | null> = { message: error.message };
  for (const field of ERROR_FIELDS) {
    const value = isPostgresError(error) ? (error as unknown as Record<string, unknown>)[field] : undefined;
    body[field] = value === undefined || value === null ? null : String(value);
  }
  // Without a Postgres error Neon still sends these two, empty.
  body.code ??= "";
  body.severity ??= "";
  return body;
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RequestError(`invalid connection string: malformed percent-encoding in "${part}"`);
  }
}

function answerOf(status: number, body: string, headers: Record<string, string> = {}): SqlAnswer {
  return { status, headers: { "content-type": "application/json", "access-control-allow-origin": "*", ...headers }, body };
}

export function sqlOverHttp(opts: SqlOverHttpOptions): SqlOverHttp {
  const pools = new Map<string, pg.Pool>();
  const listening = new WeakSet<pg.PoolClient>();
  let requests = 0;
  let statements = 0;

  /** The pool for a connection string, after checking it as Neon's proxy would (400 otherwise). */
  function poolFor(connectionString: string | undefined): pg.Pool {
    if (!connectionString) throw new RequestError("invalid header: neon-connection-string");
    const existing = pools.get(connectionString);
    if (existing) return existing;
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch (error) {
      throw new RequestError(`invalid connection string: ${(error as Error).message}`);
    }
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new RequestError("incorrect scheme");
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    if (!host) throw new RequestError("missing hostname");
    if (!url.username) throw new RequestError("missing username");
    const database = decoded(url.pathname.slice(1));
    if (!database) throw new RequestError("missing database name");
    if (!opts.allowedHosts.has(host)) throw new RequestError(`invalid hostname: ${host} is not in the dev proxy's allowedHosts`);
    // Only what applies once the proxy has terminated TLS: sslmode and the like stay with the client.
    const pool = new pg.Pool({
      host,
      port: url.port ? Number(url.port) : 5432,
      user: decoded(url.username),
      password: decoded(url.password),
      database,
      application_name: url.searchParams.get("application_name") ?? undefined,
      options: url.searchParams.get("options") ?? undefined,
      ssl: false,
      types: RAW_TEXT,
      max: opts.poolSize,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
    });
    // An idle connection that breaks (Postgres restarted) is dropped by the pool; the next request
    // gets a new one. Without a listener the error would end the process.
    pool.on("error", () => undefined);
    pools.set(connectionString, pool);
    return pool;
  }

  async function execute(client: pg.PoolClient, statement: Statement, defaultArrayMode: boolean) {
    const result = await client.query({
      text: statement.query,
      values: statement.params,
      rowMode: "array",
      queryMode: "extended",
    } as pg.QueryArrayConfig);
    const arrayMode = statement.arrayMode ?? defaultArrayMode;
    const names = result.fields.map((f) => f.name);
    return {
      command: result.command,
      rowCount: result.rowCount,
      rows: arrayMode ? result.rows : result.rows.map((row) => Object.fromEntries(row.map((value, i) => [names[i], value]))),
      fields: result.fields.map(({ name, dataTypeID, tableID, columnID, dataTypeSize, dataTypeModifier }) => ({
        name, dataTypeID, tableID, columnID, dataTypeSize, dataTypeModifier, format: "text",
      })),
      rowAsArray: arrayMode,
    };
  }

  /** One statement on its own, or a batch in one transaction: all or nothing. */
  async function run(client: pg.PoolClient, payload: Statement | Statement[], defaultArrayMode: boolean, batch: BatchOptions) {
    if (!Array.isArray(payload)) return { result: await execute(client, payload, defaultArrayMode), headers: {} };
    await client.query(beginStatement(batch));
    const results = [];
    try {
      for (const statement of payload) results.push(await execute(client, statement, defaultArrayMode));
      await client.query("COMMIT");
    } catch (error) {
      // The error answered is the failing statement's; a failed ROLLBACK shows in the connection's state.
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
    const headers: Record<string, string> = {};
    if (batch.isolationLevel) headers["neon-batch-isolation-level"] = batch.isolationLevel;
    if (batch.readOnly) headers["neon-batch-read-only"] = "true";
    if (batch.deferrable) headers["neon-batch-deferrable"] = "true";
    return { result: { results }, headers };
  }

  async function answer(req: http.IncomingMessage): Promise<SqlAnswer> {
    requests++;
    try {
      if (header(req, "authorization")) throw new RequestError("the dev proxy does not do Neon's JWT auth (authToken); plain Postgres has no pg_session_jwt");
      // The driver always asks for raw text; Neon's JSON-typed output is not reproduced here.
      if (header(req, "neon-raw-text-output") !== "true") throw new RequestError("the dev proxy serves Neon-Raw-Text-Output: true only (what @neondatabase/serverless sends)");
      const defaultArrayMode = header(req, "neon-array-mode") === "true";
      const batchOptions = parseBatchOptions(req);
      const pool = poolFor(header(req, "neon-connection-string"));
      const payload = parsePayload(await readBody(req));
      statements += Array.isArray(payload) ? payload.length : 1;

      const client = await pool.connect();
      // A connection that breaks while checked out (Postgres terminated it) errors on the client,
      // which the pool does not listen to then: without a listener the error would end the process.
      if (!listening.has(client)) {
        client.on("error", () => undefined);
        listening.add(client);
      }
      let reply: { result: unknown; headers: Record<string, string> };
      try {
        reply = await run(client, payload, defaultArrayMode, batchOptions);
      } catch (error) {
        // Back to the pool only when Postgres answered and the connection is idle, as Neon's pool does.
        client.release(!(isPostgresError(error) && client.getTransactionStatus() === "I"));
        throw error;
      }
      // A lone BEGIN leaves a transaction open: that connection is dropped, not shared.
      client.release(client.getTransactionStatus() !== "I");
      const text = JSON.stringify(reply.result);
      if (Buffer.byteLength(text) > MAX_RESPONSE_BYTES) throw new RequestError(`response is too large (max is ${MAX_RESPONSE_BYTES} bytes)`, 507);
      return answerOf(200, text, reply.headers);
    } catch (error) {
      const status = error instanceof RequestError ? error.status : isPostgresError(error) ? 400 : 500;
      // Postgres answered (a statement, or the connection set-up: no such database, too many
      // connections): 400 with its fields. Anything else is the database being unreachable: 500.
      return answerOf(status, JSON.stringify(errorBody(error instanceof Error ? error : new Error(String(error)))));
    }
  }

  return {
    answer,
    stats: () => ({ requests, statements }),
    resetStats() {
      requests = 0;
      statements = 0;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((pool) => pool.end()));
    },
  };
}
