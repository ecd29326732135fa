// A Redis and a Postgres of the chaos run's own, so that it can crash them without touching the
// machine's shared servers (which the tests and other stacks use). Both keep what they
// acknowledged across a crash, as the managed services do: Redis appends every write to its AOF
// with fsync before answering, Postgres replays its WAL. A crash is SIGKILL for Redis and
// `pg_ctl stop -m immediate` (no shutdown checkpoint) for Postgres.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { postgresAnswers } from "../db.ts";
import { redisAnswers } from "../stack.ts";

export interface CrashableService {
  url: string;
  /** kills it without a clean shutdown */
  crash(): Promise<void>;
  /** starts it again on the same port and data; resolves when it answers */
  start(): Promise<void>;
  /** stops it and deletes its data */
  destroy(): Promise<void>;
  /** the last resort on the way out of the process (synchronous): kills it, deletes its data */
  killNow(): void;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not answer within ${timeoutMs / 1000} s`);
}

export async function startOwnRedis(port: number): Promise<CrashableService> {
  const dir = mkdtempSync(path.join(tmpdir(), "chaos-redis-"));
  const url = `redis://127.0.0.1:${port}`;
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""];
  let server: ChildProcess | undefined;
  const start = async () => {
    server = spawn("redis-server", args, { stdio: "ignore" });
    await until(() => redisAnswers(url), `redis-server on port ${port}`);
  };
  const kill = async (signal: NodeJS.Signals) => {
    const child = server;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill(signal);
    });
  };
  if (await redisAnswers(url)) throw new Error(`port ${port} already answers Redis; set CHAOS_REDIS_PORT`);
  await start();
  return {
    url,
    crash: () => kill("SIGKILL"),
    start,
    async destroy() {
      await kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    killNow() {
      if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const bin = path.join(root, version, "bin");
    if (existsSync(path.join(bin, "initdb"))) return bin;
  }
  throw new Error("no Postgres server binaries under /usr/lib/postgresql (Debian's postgresql package)");
}

export async function startOwnPostgres(port: number): Promise<CrashableService> {
  const bin = postgresBin();
  const dir = mkdtempSync(path.join(tmpdir(), "chaos-pg-"));
  // initdb and postgres refuse to run as root; as root, run them as the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const run = (tool: string, args: string[]) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", path.join(bin, tool), ...args]] : [path.join(bin, tool), args];
    execFileSync(file, argv, { stdio: "ignore" });
  };
  const data = path.join(dir, "data");
  run("initdb", ["-D", data, "-A", "trust", "-U", "root", "--no-sync"]);
  const url = `postgres://root@127.0.0.1:${port}/postgres`;
  // Neon's pooled endpoint takes thousands of client connections. With 200 here the default load
  // got 503s before any fault began; with 1000 it did not.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=1000`;
  if (await postgresAnswers(url)) throw new Error(`port ${port} already answers Postgres; set CHAOS_POSTGRES_PORT`);
  const start = async () => {
    run("pg_ctl", ["-D", data, "-o", options, "-l", path.join(dir, "log"), "-w", "start"]);
    await until(() => postgresAnswers(url), `postgres on port ${port}`);
  };
  await start();
  return {
    url,
    crash: async () => run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]),
    start,
    async destroy() {
      try {
        run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
    killNow() {
      if (!existsSync(path.join(data, "postmaster.pid"))) return rmSync(dir, { recursive: true, force: true });
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
