// Neon in front of a plain Postgres, so that `@neondatabase/serverless` runs unchanged in
// development and tests, both ways it reaches Neon:
// - WebSocket (Pool, Client, drizzle-orm/neon-serverless): a relay that plays Neon's wsproxy. The
//   driver opens `ws://<wsProxy>?address=host:port` and then speaks the ordinary Postgres wire
//   protocol inside binary frames; the relay only copies bytes. It reads the client's half of the
//   stream just far enough to count queries, which the benchmarks use as round trips to Postgres.
// - SQL over HTTP (`neon()`, drizzle-orm/neon-http): `POST /sql` on the same server and port
//   (dev/neon-http.ts), with a Postgres connection pool per connection string as Neon keeps one.
// With `rttMs` both pay the round trips and set-ups a distant Neon would cost (dev/simulated-rtt.ts).
//
// Worker side (development only): neonConfig.wsProxy = (host, port) => `${wsProxy}?address=${host}:${port}`,
// useSecureWebSocket = false, pipelineTLS = false, pipelineConnect = false, and
// neonConfig.fetchEndpoint = neonHttpEndpoint(wsProxy) (src/db/client.ts).
import http from "node:http";
import net from "node:net";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import type { WebSocket, RawData, WebSocketServer as WebSocketServerType } from "ws";
import { FrontendMessageCounter } from "./pg-message-counter.ts";
import { neonHttpEndpoint } from "../src/db/client.ts";
import { sqlOverHttp } from "./neon-http.ts";
import { DelayLine, httpDistance, sleep, websocketSetUpMs } from "./simulated-rtt.ts";

export interface NeonProxyStats {
  /** WebSocket connections accepted */
  connections: number;
  /** WebSocket path: simple-protocol 'Q' messages + extended-protocol 'S' (Sync) messages */
  queries: number;
  /** `queries` per WebSocket connection, in the order they were accepted */
  queriesPerConnection: number[];
  /** SQL-over-HTTP path: TCP connections that carried requests to /sql */
  httpConnections: number;
  /** SQL-over-HTTP path: POST /sql requests (one round trip each; a transaction() batch is 1) */
  httpRequests: number;
  /** SQL-over-HTTP path: statements asked for (a batch of n counts n) */
  httpStatements: number;
}

export interface NeonProxy {
  /** host:port/path to give to neonConfig.wsProxy, e.g. "127.0.0.1:43122/v1" */
  wsProxy: string;
  /** URL to give to neonConfig.fetchEndpoint, e.g. "http://127.0.0.1:43122/sql" (= neonHttpEndpoint(wsProxy)) */
  httpEndpoint: string;
  stats(): NeonProxyStats;
  resetStats(): void;
  close(): Promise<void>;
}

export interface NeonProxyOptions {
  /** 0 = random (the default) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** Postgres hosts the relay may dial and connection strings may name; default ["127.0.0.1", "localhost"] */
  allowedHosts?: string[];
  /** simulated network round trip between the Worker and Neon, in ms (default 0: loopback) */
  rttMs?: number;
  /** Postgres connections the HTTP path keeps per connection string (default 20) */
  httpPoolSize?: number;
}

// Loaded with Node's own resolver: when vitest's global setup imports this file, Vite resolves
// bare imports with the Workers plugin's conditions, which pick ws's browser stub (no server).
const { WebSocketServer } = createRequire(import.meta.url)("ws") as { WebSocketServer: typeof WebSocketServerType };

// Above this, relay stops reading the faster side until the slower one drains.
const HIGH_WATER_BYTES = 1024 * 1024;

function parseAddress(address: string | null): { host: string; port: number } | null {
  if (!address) return null;
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
  if (!match) return null;
  const port = Number(match[2]);
  return port > 0 && port < 65536 ? { host: match[1]!, port } : null;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export async function startNeonProxy(opts: NeonProxyOptions = {}): Promise<NeonProxy> {
  const host = opts.host ?? "127.0.0.1";
  const allowedHosts = new Set(opts.allowedHosts ?? ["127.0.0.1", "localhost"]);
  const rttMs = opts.rttMs ?? 0;
  let connections = 0;
  let queries = 0;
  let perConnection: number[] = [];
  let httpConnections = 0;
  const sockets = new Set<net.Socket>();
  const sql = sqlOverHttp({ allowedHosts, poolSize: opts.httpPoolSize ?? 20 });
  const distance = httpDistance(rttMs);

  async function serveSql(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (await distance.arrive(req.socket)) httpConnections++;
    const answer = await sql.answer(req);
    await distance.leave();
    res.writeHead(answer.status, { ...answer.headers, "content-length": Buffer.byteLength(answer.body) }).end(answer.body);
  }

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://proxy").pathname.replace(/\/+$/, "");
    if (path === "/sql" && req.method === "POST") {
      serveSql(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(`dev proxy: ${String(error)}\n`);
      });
      return;
    }
    if (path === "/sql") {
      res.writeHead(405, { allow: "POST", "content-type": "text/plain" }).end("POST /sql\n");
      return;
    }
    res.writeHead(426, { "content-type": "text/plain" }).end("WebSocket upgrade expected on /v1 (or POST /sql)\n");
  });
  // Longer than workerd keeps an idle connection, so that it is never reused just as it closes.
  server.keepAliveTimeout = 30_000;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const target = parseAddress(url.searchParams.get("address"));
    const refuse = (status: number, reason: string) => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${reason}\n`);
    };
    if (url.pathname.replace(/\/+$/, "") !== "/v1") return refuse(404, "only /v1 is served");
    if (!target) return refuse(400, "expected ?address=host:port");
    if (!allowedHosts.has(target.host)) return refuse(403, `host ${target.host} is not in allowedHosts`);
    // The 101 reaches the client after the TCP and TLS handshakes and the upgrade's own round trip.
    void sleep(websocketSetUpMs(rttMs)).then(() => {
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => relay(ws, target));
    });
  });

  function relay(ws: WebSocket, target: { host: string; port: number }): void {
    connections++;
    // Per connection too: a send route's pool and a worker run's pool can be told apart.
    const index = perConnection.push(0) - 1;
    const counter = new FrontendMessageCounter((type) => {
      if (type === "Q" || type === "S") {
        queries++;
        perConnection[index]!++;
      }
    });
    const tcp = net.connect({ host: target.host, port: target.port });
    tcp.setNoDelay(true);
    sockets.add(tcp);
    // Bytes the client sends before the TCP connection is up are buffered by net.Socket itself.
    // Each direction is a delay line of RTT/2 (synchronous when rttMs is 0); closes travel in it
    // too, so that they never overtake the bytes sent before them.
    const toPostgres = new DelayLine(rttMs / 2);
    const toClient = new DelayLine(rttMs / 2);

    ws.on("message", (data) => {
      const chunk = toBuffer(data);
      counter.push(chunk);
      toPostgres.push(() => {
        if (!tcp.write(chunk)) ws.pause();
      });
    });
    tcp.on("drain", () => ws.resume());

    tcp.on("data", (chunk) => {
      toClient.push(() => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(chunk, { binary: true });
        if (ws.bufferedAmount > HIGH_WATER_BYTES) {
          tcp.pause();
          const wait = setInterval(() => {
            if (ws.readyState !== ws.OPEN || ws.bufferedAmount < HIGH_WATER_BYTES / 2) {
              clearInterval(wait);
              tcp.resume();
            }
          }, 5);
        }
      });
    });

    // Either side going away ends the other: Postgres sees a client disconnect, the driver sees
    // a closed socket instead of waiting on a query that can no longer be answered. The driver
    // never closes its WebSocket itself: `client.end()` sends Terminate and resolves only when
    // Postgres hangs up and this close reaches it. (workerd then fires an `error` event, "Network
    // connection lost.", after the clean close; the driver re-emits it, so give Client/Pool an
    // `error` listener — see dev/README.md.)
    let tcpError: Error | undefined;
    tcp.on("error", (error) => {
      tcpError = error;
    });
    tcp.on("close", () => {
      sockets.delete(tcp);
      toClient.push(() => {
        if (tcpError && ws.readyState === ws.OPEN) ws.close(1011, `postgres connection: ${tcpError.message}`.slice(0, 120));
        else if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
      });
    });
    ws.on("close", () => toPostgres.push(() => tcp.end()));
    ws.on("error", () => {
      toPostgres.clear();
      tcp.destroy();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const wsProxy = `${urlHost}:${port}/v1`;

  return {
    wsProxy,
    httpEndpoint: neonHttpEndpoint(wsProxy),
    stats: () => {
      const http = sql.stats();
      return { connections, queries, queriesPerConnection: [...perConnection], httpConnections, httpRequests: http.requests, httpStatements: http.statements };
    },
    resetStats() {
      connections = 0;
      queries = 0;
      perConnection = [];
      httpConnections = 0;
      sql.resetStats();
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await sql.close();
    },
  };
}
