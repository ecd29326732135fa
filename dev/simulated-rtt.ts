// Simulated distance for the dev bridges. In production the Worker runs at the edge and Neon and
// Upstash are tens of milliseconds away, so what a request costs is mostly round trips and
// connection set-up; on loopback both are free. The bridges charge them back, as the real
// protocols pay them (rttMs = one network round trip; 0 = loopback, nothing is delayed):
//
// - HTTP (Neon's SQL-over-HTTP endpoint, the Upstash REST API): a request reaches the server
//   RTT/2 after it is sent and its answer reaches the client RTT/2 after it leaves, so one RTT per
//   request. The request that opens a TCP connection first pays the TCP handshake (1 RTT) and the
//   TLS 1.3 handshake (1 RTT): 3 RTT in all. A kept-alive connection pays the 1 RTT only.
// - WebSocket (Neon's Pool/Client): TCP + TLS (2 RTT) and the HTTP upgrade (1 RTT) before the
//   first frame, then every chunk in either direction arrives RTT/2 after it was sent, in order,
//   so each Postgres protocol exchange costs the round trips it really takes.
//
// Not modelled: bandwidth, jitter, loss, TCP slow start, and Neon's or Upstash's own time behind
// their endpoints. Connection reuse is whatever the client does against the bridge locally (workerd
// keeps HTTP connections alive per origin), which need not match what it does against the real host.
import type net from "node:net";

/** BRIDGE_RTT_MS: the simulated round trip to Neon and Upstash, in ms (unset or empty = 0). */
export function bridgeRttFromEnv(): number {
  const raw = process.env.BRIDGE_RTT_MS?.trim() ?? "";
  const rttMs = raw === "" ? 0 : Number(raw);
  if (!Number.isFinite(rttMs) || rttMs < 0) throw new Error(`BRIDGE_RTT_MS must be a number of milliseconds >= 0, got "${raw}"`);
  return rttMs;
}

/**
 * Resolves no earlier than `ms` after the call. Node's timers may fire up to a few milliseconds
 * early (they count from the event loop's cached clock), which would let a simulated RTT shrink;
 * the remainder is waited for again.
 */
export function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const due = performance.now() + ms;
  return new Promise((resolve) => {
    const check = () => {
      const left = due - performance.now();
      if (left <= 0) resolve();
      else setTimeout(check, Math.ceil(left));
    };
    check();
  });
}

/** The HTTP side of the model: wait `arrive` before handling a request and `leave` before answering it. */
export interface HttpDistance {
  /** resolves when the request has reached the server; true if it opened its TCP connection */
  arrive(socket: net.Socket): Promise<boolean>;
  /** resolves when the answer, sent now, would reach the client */
  leave(): Promise<void>;
}

export function httpDistance(rttMs: number): HttpDistance {
  const seen = new WeakSet<net.Socket>();
  return {
    async arrive(socket) {
      const opened = !seen.has(socket);
      seen.add(socket);
      await sleep(rttMs / 2 + (opened ? 2 * rttMs : 0));
      return opened;
    },
    leave: () => sleep(rttMs / 2),
  };
}

/** Before the first frame of a WebSocket: TCP + TLS 1.3 handshakes and the HTTP upgrade. */
export const websocketSetUpMs = (rttMs: number) => 3 * rttMs;

/**
 * One direction of a link: runs each action `delayMs` after it was pushed, in push order. With no
 * delay an action runs at once (synchronously), so that a zero RTT changes nothing.
 */
export class DelayLine {
  private readonly queue: { due: number; action: () => void }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly delayMs: number) {}

  push(action: () => void): void {
    if (this.delayMs <= 0) return action();
    this.queue.push({ due: performance.now() + this.delayMs, action });
    this.schedule();
  }

  /** Drops what is still in flight (the link is gone). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      while (this.queue.length > 0 && this.queue[0]!.due <= now) this.queue.shift()!.action();
      this.schedule();
    }, Math.ceil(Math.max(0, this.queue[0]!.due - performance.now())));
  }
}
