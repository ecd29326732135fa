// Bytes in flight across the isolate, for email attachments. An attachment is held twice while a
// mail is built (the downloaded bytes and their base64 text, 4/3 as large), and the isolate has 128
// MB for everything: six concurrent emails with a 10 MB attachment each would hold ~140 MB. Each
// send reserves what its attachments will hold before it downloads them and returns it when the
// Mail Send request is over; a send that cannot fit waits its turn (FIFO), or, when it already holds
// part of the budget, gives it all back and fails as a retry so that two sends never wait on each
// other.

export class ByteBudget {
  private inFlight = 0;
  private peakBytes = 0;
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(readonly limit: number) {}

  get held(): number {
    return this.inFlight;
  }

  /** the most held at once since creation or the last resetPeak (tests) */
  get peak(): number {
    return this.peakBytes;
  }

  resetPeak(): void {
    this.peakBytes = this.inFlight;
  }

  /** A request larger than the whole budget is granted alone (the budget, clamped). */
  clamp(bytes: number): number {
    return Math.min(Math.max(0, Math.ceil(bytes)), this.limit);
  }

  tryAcquire(bytes: number): boolean {
    const n = this.clamp(bytes);
    if (this.waiters.length > 0 || this.inFlight + n > this.limit) return false;
    this.take(n);
    return true;
  }

  /** Waits until `bytes` fit, in arrival order; rejects when the signal aborts. */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire(bytes)) return Promise.resolve();
    const n = this.clamp(bytes);
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes: n,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.wakeWaiters();
        reject(signal?.reason ?? new Error("aborted"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - this.clamp(bytes));
    this.wakeWaiters();
  }

  private take(n: number) {
    this.inFlight += n;
    this.peakBytes = Math.max(this.peakBytes, this.inFlight);
  }

  private wakeWaiters() {
    while (this.waiters.length > 0 && this.inFlight + this.waiters[0]!.bytes <= this.limit) {
      const next = this.waiters.shift()!;
      this.take(next.bytes);
      next.resolve();
    }
  }
}

const budgets = new Map<number, ByteBudget>();

/** The isolate's budget for a limit (one per configured value, so tests with their own limit do not share). */
export function attachmentBudget(limit: number): ByteBudget {
  let budget = budgets.get(limit);
  if (!budget) budgets.set(limit, (budget = new ByteBudget(limit)));
  return budget;
}

/** What an attachment of `raw` bytes holds while its mail is built: the bytes and their base64. */
export const heldBytes = (raw: number) => raw + Math.ceil(raw / 3) * 4;
