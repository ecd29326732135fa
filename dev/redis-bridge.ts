// The Upstash REST API over a real Redis, so that `@upstash/redis` runs unchanged in development
// and tests. It speaks the subset of https://upstash.com/docs/redis/features/restapi the client
// uses: `POST /` with a JSON command array, `POST /pipeline`, `POST /multi-exec`, the path form
// (`/set/k/v`), bearer-token auth and `Upstash-Encoding: base64`.
//
// Replies keep their RESP2 shape (nested arrays, never maps): `@upstash/redis` parses stream and
// hash replies positionally, and a map-shaped reply silently breaks it (docs/architecture.md section 7).
import http from "node:http";
import { Buffer } from "node:buffer";
import Redis from "ioredis";
import { createHash } from "node:crypto";
import { httpDistance } from "./simulated-rtt.ts";

export interface RedisBridge {
  url: string;
  token: string;
  /**
   * Since start or the last resetStats: TCP connections that carried requests, HTTP requests served
   * (one per POST, a pipeline counts 1), Redis commands asked for, and requests by their commands.
   */
  stats(): { connections: number; requests: number; commands: number; requestsByCommands: Record<string, number> };
  resetStats(): void;
  close(): Promise<void>;
}

export interface RedisBridgeOptions {
  /** default redis://127.0.0.1:6379 */
  redisUrl?: string;
  /** Redis logical database; tests use one per run */
  db?: number;
  token: string;
  /** 0 = random */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /**
   * simulated network round trip between the Worker and Upstash, in ms (default 0: loopback): one
   * per request, three for the request that opens a connection (dev/simulated-rtt.ts)
   */
  rttMs?: number;
  /** sees every command run outside MULTI/EXEC and how it went (the chaos suite's record of XADDs) */
  observe?: (command: string[], outcome: PromiseSettledResult<unknown>) => void;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
// Long enough for any sane command against a local Redis, short enough that a wedged Redis turns
// into an HTTP 500 well before the Worker's own REDIS_TIMEOUT_MS gives up on us.
const COMMAND_TIMEOUT_MS = 2_500;

type Arg = string | Buffer;
type Reply = null | number | Buffer | Error | Reply[];
type Item = { result: unknown } | { error: string };

// Commands that would change the state of the shared connection for every other request (or leave
// it unusable), and which Upstash does not offer over REST either. MULTI/EXEC go through /multi-exec.
const REFUSED = new Set([
  "SELECT", "SWAPDB", "HELLO", "AUTH", "QUIT", "RESET", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR",
  "SYNC", "PSYNC", "REPLICAOF", "SLAVEOF", "SHUTDOWN", "DEBUG",
]);
const REFUSED_CLIENT_SUBCOMMANDS = new Set(["REPLY", "TRACKING", "KILL", "PAUSE", "NO-EVICT", "NO-TOUCH"]);

// Commands that may wait on the server. They would stall every request queued behind them on the
// shared connection, so they get a connection of their own (and no command timeout).
const ALWAYS_BLOCKING = new Set([
  "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
]);

/**
 * An error Redis itself answered (WRONGTYPE, ERR ...), as opposed to a connection problem. Checked
 * by name: under vitest's Vite loader the CommonJS named export `ReplyError` of ioredis is missing.
 */
function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

class BadRequest extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

function isBlocking(command: Arg[]): boolean {
  const name = command[0]!.toString().toUpperCase();
  if (ALWAYS_BLOCKING.has(name)) return true;
  if (name !== "XREAD" && name !== "XREADGROUP") return false;
  return command.some((arg, i) => i > 0 && arg.toString().toUpperCase() === "BLOCK");
}

/** JSON body → argv. Upstash accepts strings, numbers and booleans; everything travels as bytes. */
function toCommand(value: unknown): Arg[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BadRequest("ERR a command must be a non-empty JSON array, e.g. [\"GET\",\"key\"]");
  }
  const command = value.map((arg: unknown) => {
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new BadRequest(`ERR command arguments must be strings, numbers or booleans, got ${JSON.stringify(arg)}`);
  });
  // ioredis keys its reply transformers by the exact command name ("hgetall" → object); the
  // upper-case name never matches one, so every reply stays in its RESP2 shape.
  command[0] = command[0]!.toUpperCase();
  const name = command[0];
  if (REFUSED.has(name) || (name === "CLIENT" && REFUSED_CLIENT_SUBCOMMANDS.has(String(command[1]).toUpperCase()))) {
    throw new BadRequest(`ERR command '${name}' is not supported by the Upstash REST bridge`);
  }
  return emulateUpstashScripts(command);
}

// Upstash accepts the script flag `allow-key-locking` (used by @upstash/ratelimit); Redis 7.0
// rejects it. The bridge drops the flag and remembers which SHA the client will ask for.
const UPSTASH_ONLY_FLAG = /^(#!lua[^\n]*?)\s*(?:flags=allow-key-locking\b|,\s*allow-key-locking\b)/;
const scriptShas = new Map<string, string>();
const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

function emulateUpstashScripts(command: string[]): string[] {
  const name = command[0];
  const scriptIndex = name === "EVAL" || name === "EVAL_RO" ? 1 : name === "SCRIPT" && command[1]?.toUpperCase() === "LOAD" ? 2 : -1;
  if (scriptIndex > 0) {
    const script = command[scriptIndex] ?? "";
    const rewritten = script.replace(UPSTASH_ONLY_FLAG, (_, shebang: string) => (shebang.trim() === "#!lua" ? "#!lua" : shebang));
    if (rewritten !== script) {
      scriptShas.set(sha1(script), sha1(rewritten));
      command[scriptIndex] = rewritten;
    }
  } else if (name === "EVALSHA" || name === "EVALSHA_RO") {
    command[1] = scriptShas.get(command[1]?.toLowerCase() ?? "") ?? command[1]!;
  }
  return command;
}

/**
 * Reply → JSON value. ioredis hands every string back as a Buffer, status replies included, so
 * "+OK" and a bulk "OK" look the same. That is harmless: `@upstash/redis` base64-decodes every
 * string except a top-level "OK", so the top-level "OK" (whichever kind) stays plain and all other
 * strings, status replies such as PONG or TYPE's "hash" included, are encoded — which is what the
 * client decodes. Inside arrays even "OK" is encoded, because the client decodes it there.
 */
function toJson(reply: Reply, base64: boolean, topLevel = true): unknown {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((item) => toJson(item, base64, false));
  if (reply instanceof Error) return reply.message; // an error nested in an array (EVAL, EXEC)
  if (Buffer.isBuffer(reply)) {
    if (!base64) return reply.toString("utf8"); // invalid UTF-8 becomes U+FFFD, as on Upstash
    if (topLevel && reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b) return "OK";
    return reply.toString("base64");
  }
  return reply;
}

function toItem(outcome: PromiseSettledResult<Reply>, base64: boolean): Item {
  if (outcome.status === "fulfilled") return { result: toJson(outcome.value, base64) };
  if (isReplyError(outcome.reason)) return { error: outcome.reason.message };
  throw outcome.reason; // connection trouble: the whole request fails with 500
}

type Answer = { status: number; body: unknown };
const answer = (status: number, body: unknown): Answer => ({ status, body });

function write(res: http.ServerResponse, { status, body }: Answer): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Reads at most MAX_BODY_BYTES; a larger body is drained (not kept) so that the 413 still arrives. */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) reject(new BadRequest(`ERR request body larger than ${MAX_BODY_BYTES} bytes`, 413));
      else resolve(Buffer.concat(chunks));
    });
    req.on("error", reject);
  });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new BadRequest(`ERR invalid JSON body: ${(error as Error).message}`);
  }
}

export async function startRedisBridge(opts: RedisBridgeOptions): Promise<RedisBridge> {
  const host = opts.host ?? "127.0.0.1";
  const redis = new Redis(opts.redisUrl ?? "redis://127.0.0.1:6379", {
    db: opts.db ?? 0,
    lazyConnect: true,
    // When Redis is down, fail fast instead of queueing: callers get a 500 at once, never a hang.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: 2_000,
    // Keep reconnecting for ever, at most once a second, so the bridge heals when Redis returns.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  });
  let lastConnectionError = "";
  redis.on("error", (error: Error) => {
    if (error.message !== lastConnectionError) console.warn(`[redis-bridge] ${error.message}`);
    lastConnectionError = error.message;
  });
  redis.on("ready", () => {
    if (lastConnectionError) console.warn("[redis-bridge] Redis is back");
    lastConnectionError = "";
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`redis-bridge: cannot reach Redis at ${opts.redisUrl ?? "redis://127.0.0.1:6379"}: ${String(error)}`);
  }

  const distance = httpDistance(opts.rttMs ?? 0);
  let connections = 0;
  let requests = 0;
  let commands = 0;
  /** requests by the command names they carried, e.g. "XADD" or "XACK+XREADGROUP": who sent what */
  let byCommands: Record<string, number> = {};
  const tally = (batch: Arg[][]) => {
    const key = batch.map((c) => c[0]!.toString().toUpperCase()).join("+");
    byCommands[key] = (byCommands[key] ?? 0) + 1;
  };

  const observe = (command: Arg[], outcome: PromiseSettledResult<Reply>) => opts.observe?.(command.map(String), outcome);

  /** Runs the commands on the shared connection, or on a connection of their own if one may block. */
  async function run<T>(batch: Arg[][], res: http.ServerResponse, fn: (conn: Redis) => Promise<T>): Promise<T> {
    if (!batch.some(isBlocking)) return fn(redis);
    const dedicated = redis.duplicate({ lazyConnect: true, commandTimeout: undefined, retryStrategy: () => null });
    dedicated.on("error", () => undefined); // surfaced through the command's own rejection
    // A client that gives up (timeout, abort) must not leave a blocked connection behind.
    const release = () => dedicated.disconnect();
    res.once("close", release);
    try {
      await dedicated.connect();
      return await fn(dedicated);
    } finally {
      res.off("close", release);
      release();
    }
  }

  function send(conn: Redis, command: Arg[]): Promise<Reply> {
    return conn.callBuffer(command[0]!.toString(), ...command.slice(1)) as Promise<Reply>;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<Answer> {
    requests++;
    const url = new URL(req.url ?? "/", "http://bridge");
    const auth = req.headers.authorization ?? "";
    const presented = auth.startsWith("Bearer ") ? auth.slice(7) : url.searchParams.get("_token");
    if (presented !== opts.token) return answer(401, { error: "Unauthorized" });
    if (!["GET", "POST", "PUT", "HEAD"].includes(req.method ?? "")) {
      return answer(405, { error: "Method Not Allowed" });
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const body = await readBody(req);
    const path = url.pathname.replace(/\/+$/, "");

    if (path === "/pipeline" || path === "/multi-exec") {
      const parsed = parseJson(body);
      if (!Array.isArray(parsed) || parsed.length === 0) {
        throw new BadRequest("ERR the body must be a non-empty JSON array of commands");
      }
      const batch = parsed.map(toCommand);
      commands += batch.length;
      tally(batch);
      if (path === "/pipeline") {
        // Issued back to back without awaiting: one round trip to Redis, replies in order.
        const outcomes = await run(batch, res, (conn) => Promise.allSettled(batch.map((c) => send(conn, c))));
        outcomes.forEach((outcome, i) => observe(batch[i]!, outcome));
        return answer(200, outcomes.map((outcome) => toItem(outcome, base64)));
      }
      // MULTI, the commands and EXEC are queued synchronously on the one connection, so no other
      // request's command can land inside the transaction.
      const outcomes = await Promise.allSettled([
        send(redis, ["MULTI"]),
        ...batch.map((c) => send(redis, c)),
        send(redis, ["EXEC"]),
      ]);
      const queuedOutcomes = outcomes.slice(1, -1);
      const execOutcome = outcomes[outcomes.length - 1]!;
      if (execOutcome.status === "rejected") {
        // EXECABORT: the transaction was discarded as a whole; Upstash answers one error.
        const reason = execOutcome.reason;
        if (!isReplyError(reason)) throw reason;
        const cause = queuedOutcomes.find((o) => o.status === "rejected") as PromiseRejectedResult | undefined;
        const detail = cause?.reason instanceof Error ? ` (${cause.reason.message})` : "";
        return answer(400, { error: `${reason.message}${detail}` });
      }
      const results = (execOutcome.value as Reply[] | null) ?? [];
      return answer(200, results.map((reply) =>
        reply instanceof Error ? { error: reply.message } : { result: toJson(reply, base64) },
      ));
    }

    let command: Arg[];
    if (path === "") {
      command = toCommand(parseJson(body));
    } else {
      // Path form: /set/key/value?EX=100, a POST body being the last argument before the query ones.
      const fromPath = path.slice(1).split("/").map((segment) => {
        try {
          return decodeURIComponent(segment);
        } catch {
          throw new BadRequest(`ERR malformed URL segment: ${segment}`);
        }
      });
      const query = [...url.searchParams].filter(([k]) => k !== "_token").flat();
      command = toCommand(fromPath);
      if (body.length > 0) command.push(body);
      command.push(...query);
    }
    commands += 1;
    tally([command]);
    const [outcome] = await run([command], res, (conn) => Promise.allSettled([send(conn, command)]));
    observe(command, outcome!);
    const item = toItem(outcome!, base64);
    return answer("error" in item ? 400 : 200, item);
  }

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (await distance.arrive(req.socket)) connections++;
    const reply = await handle(req, res).catch((error: unknown) =>
      // Client mistakes are 400s; anything else here means Redis is unreachable or timed out.
      error instanceof BadRequest
        ? answer(error.status, { error: error.message })
        : answer(500, { error: `ERR Redis unavailable: ${error instanceof Error ? error.message : String(error)}` }),
    );
    await distance.leave();
    if (!res.destroyed) write(res, reply);
  }

  const server = http.createServer((req, res) => void serve(req, res));
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    token: opts.token,
    stats: () => ({ connections, requests, commands, requestsByCommands: { ...byCommands } }),
    resetStats() {
      connections = 0;
      requests = 0;
      commands = 0;
      byCommands = {};
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
