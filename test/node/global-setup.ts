// Runs once per `npm test`, in Node: starts the dev bridges, gives the run its own Postgres
// database and Redis logical database, applies the migrations, and removes both afterwards,
// so that two runs never collide and a run never touches the dev database.
import net from "node:net";
import type { TestProject } from "vitest/node";
import Redis from "ioredis";
import pg from "pg";
import { applyMigrations, dropDatabase, ensureDatabase, postgresAnswers } from "../../dev/db.ts";
import { startRedisBridge } from "../../dev/redis-bridge.ts";
import { startNeonProxy } from "../../dev/neon-proxy.ts";
import { claimRedisDb } from "../../dev/redis-db.ts";
import { startProviderSandbox } from "../../dev/provider-sandbox.ts";

const PG_BASE = process.env.TEST_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const TOKEN = "test-token";
// The simulated round trip of the second pair of bridges, which only the RTT tests use.
const TEST_RTT_MS = 40;

declare module "vitest" {
  export interface ProvidedContext {
    redisRestUrl: string;
    redisRestToken: string;
    redisDb: number;
    neonWsProxy: string;
    databaseUrl: string;
    sandboxUrl: string;
    rttMs: number;
    rttNeonWsProxy: string;
    rttRedisRestUrl: string;
    /** a server that accepts connections and never answers: a dependency that hangs */
    blackholeUrl: string;
  }
}

export default async function setup(project: TestProject) {
  if (!(await postgresAnswers(PG_BASE))) {
    throw new Error(`Postgres does not answer at ${PG_BASE}; start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
  }
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    await probe.ping();
  } catch {
    throw new Error(`Redis does not answer at ${REDIS_URL}; start it: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`);
  } finally {
    probe.disconnect();
  }

  const dbName = `msg_test_${process.pid}_${Date.now().toString(36)}`;
  const databaseUrl = Object.assign(new URL(PG_BASE), { pathname: `/${dbName}` }).toString();
  await ensureDatabase(databaseUrl);
  await applyMigrations(databaseUrl);
  // Recipient blocks for test files (test/helpers/sandbox.ts uniquePhone): one per file, never twice.
  const setup = new pg.Client({ connectionString: databaseUrl });
  await setup.connect();
  await setup.query("create sequence test_recipient_block");
  await setup.end();

  const redisDb = await claimRedisDb(REDIS_URL);
  const bridge = await startRedisBridge({ redisUrl: REDIS_URL, db: redisDb.db, token: TOKEN, port: 0 });
  const proxy = await startNeonProxy({ port: 0 });
  const sandbox = await startProviderSandbox({ port: 0 });
  const blackhole = await startBlackhole();
  const rttBridge = await startRedisBridge({ redisUrl: REDIS_URL, db: redisDb.db, token: TOKEN, port: 0, rttMs: TEST_RTT_MS });
  const rttProxy = await startNeonProxy({ port: 0, rttMs: TEST_RTT_MS });

  project.provide("redisRestUrl", bridge.url);
  project.provide("redisRestToken", TOKEN);
  project.provide("redisDb", redisDb.db);
  project.provide("neonWsProxy", proxy.wsProxy);
  project.provide("databaseUrl", databaseUrl);
  project.provide("sandboxUrl", sandbox.url);
  project.provide("rttMs", TEST_RTT_MS);
  project.provide("blackholeUrl", blackhole.url);
  project.provide("rttNeonWsProxy", rttProxy.wsProxy);
  project.provide("rttRedisRestUrl", rttBridge.url);

  return async () => {
    await blackhole.close();
    await sandbox.close();
    await rttProxy.close();
    await rttBridge.close();
    await proxy.close();
    await bridge.close();
    await redisDb.release();
    if (!process.env.KEEP_TEST_DB) await dropDatabase(databaseUrl);
  };
}

/** Accepts TCP connections, reads whatever comes, and never answers. */
async function startBlackhole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
