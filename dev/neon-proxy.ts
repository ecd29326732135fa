// A WebSocket-to-TCP relay that plays Neon's wsproxy for a plain Postgres, so that
// `@neondatabase/serverless` (Pool, Client, drizzle) runs unchanged in development and tests.
// The driver opens `ws://<wsProxy>?address=host:port` and then speaks the ordinary Postgres wire
// protocol inside binary frames; the relay only copies bytes. It reads the client's half of the
// stream just far enough to count queries, which the benchmarks use as round trips to Postgres.
//
// Worker side (development only): neonConfig.wsProxy = (host, port) => `${wsProxy}?address=${host}:${port}`,
// useSecureWebSocket = false, pipelineTLS = false, pipelineConnect = false.
import http from "node:http";
import net from "node:net";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import type { WebSocket, RawData, WebSocketServer as WebSocketServerType } from "ws";
import { FrontendMessageCounter } from "./pg-message-counter.ts";

export interface NeonProxy {
  /** host:port/path to give to neonConfig.wsProxy, e.g. "127.0.0.1:43122/v1" */
  wsProxy: string;
  /** frontend protocol messages seen: queries = simple 'Q' messages + extended-protocol 'S' (Sync) messages; connections = websocket connections accepted */
  stats(): { connections: number; queries: number; queriesPerConnection: number[] };
  resetStats(): void;
  close(): Promise<void>;
}

export interface NeonProxyOptions {
  /** 0 = random (the default) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** Postgres hosts the relay may dial; default ["127.0.0.1", "localhost"] */
  allowedHosts?: string[];
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
  let connections = 0;
  let queries = 0;
  let perConnection: number[] = [];
  const sockets = new Set<net.Socket>();

  const server = http.createServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" }).end("WebSocket upgrade expected on /v1\n");
  });
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
    wss.handleUpgrade(req, socket, head, (ws) => relay(ws, target));
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

    ws.on("message", (data) => {
      const chunk = toBuffer(data);
      counter.push(chunk);
      if (!tcp.write(chunk)) ws.pause();
    });
    tcp.on("drain", () => ws.resume());

    tcp.on("data", (chunk) => {
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

    // Either side going away ends the other: Postgres sees a client disconnect, the driver sees
    // a closed socket instead of waiting on a query that can no longer be answered. The driver
    // never closes its WebSocket itself: `client.end()` sends Terminate and resolves only when
    // Postgres hangs up and this close reaches it. (workerd then fires an `error` event, "Network
    // connection lost.", after the clean close; the driver re-emits it, so give Client/Pool an
    // `error` listener — see dev/README.md.)
    tcp.on("close", () => {
      sockets.delete(tcp);
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
    });
    tcp.on("error", (error) => {
      if (ws.readyState === ws.OPEN) ws.close(1011, `postgres connection: ${error.message}`.slice(0, 120));
    });
    ws.on("close", () => tcp.end());
    ws.on("error", () => tcp.destroy());
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;

  return {
    wsProxy: `${urlHost}:${port}/v1`,
    stats: () => ({ connections, queries, queriesPerConnection: [...perConnection] }),
    resetStats() {
      connections = 0;
      queries = 0;
      perConnection = [];
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
