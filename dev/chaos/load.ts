// The chaos run's traffic, shaped like real clients' rather than like a benchmark's:
// - sends of mixed SMS/MMS/email at a steady offered rate (a multiple of the capacity measured by
//   `calibrate`), most to a recipient of their own, some with programmed provider answers and
//   callback quirks;
// - the same text to the same number twice within seconds (SMS and email), and now and then a
//   Twilio message with that very text already sent by "someone else" on the account (the
//   attribution case of the "answers that never lie" issue);
// - bursts: several different texts to one recipient at once;
// - idempotent clients: every other send carries an Idempotency-Key and is retried with the same
//   key after a 503, a 409 "in progress" or no answer (timeout, reset), as a careful client does;
//   the others send once without a key;
// - inbound SMS webhooks, each delivered twice.
// Every send carries `metadata.chaos_send` = its index, so that the checks can tell from Postgres
// which stored rows a logical send produced, whatever its answers said. Every request is bounded
// (`requestTimeoutMs`): no answer in time counts as "no answer".
import { boundedFetch, jsonOf } from "../bounded-fetch.ts";
import { SANDBOX_CREDENTIALS, twilioSignature, type ProviderSandbox } from "../provider-sandbox.ts";

export type SendKind = "single" | "duplicate" | "foreign-collision" | "burst" | "calibration";

/** One HTTP request of a send. */
export interface Try {
  /** HTTP status, or 0 when no answer came (connection refused or reset, timeout) */
  status: number;
  /** the envelope's error code, or the connection error ("timeout" past the ceiling) */
  error?: string;
  /** the id the answer named: a 201's message, or a 503's details.message_id */
  id?: string;
  /** a 503 that said the message may have been stored (the documented unknown outcome) */
  mayHaveBeenStored?: boolean;
  startedS: number;
  atS: number;
}

export interface SendRecord {
  index: number;
  kind: SendKind;
  type: "sms" | "mms" | "email";
  to: string;
  body: string;
  /** the Idempotency-Key of a retrying client; none for a fire-once client */
  key?: string;
  tries: Try[];
  /** the last answer's HTTP status (0: no answer) */
  status: number;
  /** the message id of a 201 */
  id?: string;
  error?: string;
  /** when the last answer came, in seconds since the load started (calibration: since the calibration started) */
  atS: number;
}

export interface InboundRecord {
  sid: string;
  /** HTTP statuses of the first delivery and the redelivery (0: no answer) */
  answers: number[];
}

/** A request the load is still waiting for, for the report of a run stopped at its ceiling. */
export interface OpenRequest {
  what: string;
  startedS: number;
}

/**
 * The most requests in flight at once (sends, keyed retries, webhooks); past it the load waits
 * rather than piling up sockets. A default run without this bound had 1,700 requests open at
 * wrangler's local proxy after workerd's restart (see README: the proxy stopped answering).
 */
const MAX_IN_FLIGHT = 400;
/**
 * A retrying client's tries per send, and its first wait when no Retry-After came; the wait doubles
 * up to 8 s (1, 2, 4, 8, 8, 8, 8 s: ~40 s in all, each ±50 %), so that the tries outlast a
 * workerd restart (~10 s here) and the overload after it.
 */
const MAX_TRIES = 8;
const RETRY_WAIT_MS = 1000;
const RETRY_MAX_WAIT_MS = 8000;
/** A burst every this many send slots: BURST_SIZE different texts to one recipient, at once. */
const BURST_EVERY = 150;
const BURST_SIZE = 8;

/** Recipients: +1 303 5xx xxxx for SMS/MMS, chaos-<run>-<n>@example.com for email; bursts +1 303 7xx xxxx. */
export function recipient(run: string, index: number, type: SendRecord["type"]): string {
  if (type === "email") return `chaos-${run}-${index}@example.com`;
  return `+13035${String(index).padStart(6, "0")}`;
}

const typeOf = (slot: number): SendRecord["type"] => (slot % 5 === 3 ? "mms" : slot % 5 === 4 ? "email" : "sms");

/** The slot's send: duplicates copy the previous slot (slot % 10 = 0, an SMS; slot % 10 = 4, an email). */
function kindOf(slot: number): "single" | "duplicate" | "foreign-collision" {
  if (slot % 10 === 1 || slot % 10 === 5) return "duplicate";
  if (slot % 40 === 20) return "foreign-collision";
  return "single";
}
/** A slot whose recipient is shared with its duplicate: no programmed answers there. */
const shared = (slot: number) => slot % 10 === 0 || slot % 10 === 4;

/**
 * Per-recipient provider behaviour, by slot so that a run is reproducible: 3 % refused for good
 * (Twilio 21211, SendGrid 400), 5 % one 500 then accepted; callbacks duplicated, reversed or both
 * for about half.
 */
function programme(sandbox: ProviderSandbox, slot: number, type: SendRecord["type"], to: string): void {
  const outcomes = shared(slot) ? [] : slot % 33 === 7 ? [type === "email" ? "400" : "21211"] : slot % 20 === 11 ? ["500", "ok"] : [];
  const quirk = slot % 6;
  const callbacks = { mode: "post" as const, duplicate: quirk === 1 || quirk === 3, reverse: quirk === 2 || quirk === 3 };
  if (outcomes.length > 0 || callbacks.duplicate || callbacks.reverse) sandbox.setBehaviour(to, outcomes, callbacks);
}

function sendBody(sandbox: ProviderSandbox, s: Pick<SendRecord, "type" | "to" | "body" | "index">): string {
  const metadata = { chaos_send: s.index };
  if (s.type === "email") return JSON.stringify({ type: s.type, from: "chaos@example.com", to: s.to, body: s.body, metadata });
  const base = { type: s.type, from: "+12025550100", to: s.to, body: s.body, metadata };
  if (s.type === "sms") return JSON.stringify(base);
  return JSON.stringify({ ...base, attachments: [`${sandbox.url}/__sandbox/files/chaos-${s.index}.png?bytes=2048&type=image/png`] });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Load {
  readonly sends: SendRecord[] = [];
  readonly inbound: InboundRecord[] = [];
  /** the Twilio messages "someone else" sent with a send's very text, before it */
  readonly foreignSids: string[] = [];
  private nextIndex = 0;
  private pending = new Set<Promise<unknown>>();
  private open = new Map<number, OpenRequest>();
  private openSeq = 0;
  private startedAt = performance.now();
  private stopped = false;

  constructor(
    private readonly workerUrl: string,
    private readonly sandbox: ProviderSandbox,
    private readonly run: string,
    private readonly requestTimeoutMs: number,
  ) {}

  get inFlightCount(): number {
    return this.open.size;
  }

  /** What is still waiting for an answer, oldest first. */
  openRequests(): OpenRequest[] {
    return [...this.open.values()].sort((a, b) => a.startedS - b.startedS);
  }

  /** No new request from now on (the run hit its ceiling). */
  stop(): void {
    this.stopped = true;
  }

  private seconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /**
   * The send capacity: closed-loop clients at rising concurrency, `stepS` seconds each, until the
   * rate of 201s stops growing by 10 %. Returns the best rate of 201s per second.
   */
  async calibrate(stepS: number, log: (line: string) => void): Promise<number> {
    let best = 0;
    for (const clients of [2, 4, 8, 16, 32, 64]) {
      const until = performance.now() + stepS * 1000;
      let created = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (performance.now() < until && !this.stopped) {
            const index = this.nextIndex++;
            const record = await this.send({ index, kind: "calibration", type: "sms", to: recipient(this.run, index, "sms"), body: `chaos message ${index}` }, false);
            if (record.status === 201) created++;
          }
        }),
      );
      const rate = created / stepS;
      log(`calibration: ${clients} clients → ${rate.toFixed(1)} sends/s accepted`);
      if (rate < best * 1.1) {
        best = Math.max(best, rate);
        break;
      }
      best = rate;
    }
    return best;
  }

  /** Offers `ratePerS` send slots per second for `durationS` seconds; resolves when every request has an answer. */
  async drive(ratePerS: number, durationS: number, inboundEvery: number, onInboundRedelivery: (redeliver: () => Promise<void>) => void): Promise<void> {
    this.startedAt = performance.now();
    const slots = Math.round(ratePerS * durationS);
    let previous: Pick<SendRecord, "type" | "to" | "body"> | undefined;
    for (let slot = 0; slot < slots && !this.stopped; slot++) {
      const due = this.startedAt + (slot * 1000) / ratePerS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      while (this.open.size >= MAX_IN_FLIGHT) await Promise.race(this.pending);
      const index = this.nextIndex++;
      const type = typeOf(slot);
      const kind = kindOf(slot);
      // A duplicate: the very text to the very number of the previous slot's send, a moment later.
      const original = kind === "duplicate" ? previous : undefined;
      const to = original?.to ?? recipient(this.run, index, type);
      const body = original?.body ?? `chaos message ${index}`;
      const spec = { index, kind, type: original?.type ?? type, to, body };
      previous = spec;
      if (kind !== "duplicate") programme(this.sandbox, slot, type, to);
      if (kind === "foreign-collision") {
        // Someone else's message with this very text, 5-60 s before ours. Not closer: a look-alike
        // made within the clock skew (+1 s of Twilio's timestamp resolution) of our own attempt
        // looks exactly like our copy in Twilio's list, and reconcile takes it as ours
        // (docs/architecture.md, "Reconcile"); no field Twilio lists can tell them apart.
        const createdAt = new Date(Date.now() - 5000 - ((slot * 7919) % 55_000)).toISOString();
        this.foreignSids.push(this.sandbox.insertForeignMessage({ to, from: "+12025550100", body, date_created: createdAt }).sid);
      }
      this.track(this.send(spec, index % 2 === 0));
      if (slot % BURST_EVERY === BURST_EVERY / 2) {
        const burstTo = `+13037${String(slot).padStart(6, "0")}`;
        for (let k = 0; k < BURST_SIZE; k++) {
          const i = this.nextIndex++;
          this.track(this.send({ index: i, kind: "burst", type: "sms", to: burstTo, body: `chaos burst ${slot} part ${k}` }, k % 2 === 0));
        }
      }
      if (slot % inboundEvery === 0) this.track(this.receive(slot / inboundEvery, onInboundRedelivery));
    }
    await Promise.all(this.pending);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** One request, bounded, with its place in the open list while it waits. */
  private async request(what: string, url: string, body: string, headers: Record<string, string>) {
    // Every request, retries and webhooks included, waits for one of MAX_IN_FLIGHT connections, as
    // a client's pool does; the wait for a slot is not part of the request's timeout.
    while (this.open.size >= MAX_IN_FLIGHT) await sleep(20);
    const seq = this.openSeq++;
    this.open.set(seq, { what, startedS: this.seconds() });
    try {
      return await boundedFetch(url, { method: "POST", headers, body }, this.requestTimeoutMs);
    } finally {
      this.open.delete(seq);
    }
  }

  /** A send as its client makes it: once, or with a key and retried until a final answer. */
  private async send(spec: Omit<SendRecord, "tries" | "status" | "atS" | "key">, keyed: boolean): Promise<SendRecord> {
    const record: SendRecord = { ...spec, key: keyed ? `chaos-${this.run}-${spec.index}` : undefined, tries: [], status: 0, atS: this.seconds() };
    this.sends.push(record);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (record.key) headers["idempotency-key"] = record.key;
    const body = sendBody(this.sandbox, record);
    for (let n = 1; n <= (record.key ? MAX_TRIES : 1); n++) {
      const startedS = this.seconds();
      const answer = await this.request(`send #${record.index} to ${record.to}${record.key ? ` (key ${record.key}, try ${n})` : ""}`, `${this.workerUrl}/api/v1/messages/send`, body, headers);
      const json = jsonOf(answer);
      const code = typeof json?.error === "string" ? json.error : undefined;
      const details = json?.details as { message_id?: string; may_have_been_stored?: boolean } | undefined;
      const attempt: Try = {
        status: answer.status,
        error: answer.error ?? code,
        id: answer.status === 201 ? json?.id : details?.message_id,
        mayHaveBeenStored: details?.may_have_been_stored === true ? true : undefined,
        startedS,
        atS: this.seconds(),
      };
      record.tries.push(attempt);
      Object.assign(record, { status: attempt.status, error: attempt.error, atS: attempt.atS, id: attempt.status === 201 ? attempt.id : undefined });
      const again = attempt.status === 0 || attempt.status === 503 || (attempt.status === 409 && Boolean(answer.headers?.get("retry-after")));
      if (!again || this.stopped) break;
      const retryAfter = Number(answer.headers?.get("retry-after"));
      // jittered (0.5–1.5×), as real clients do: retries in lockstep would arrive as one herd
      const backoff = Math.min(RETRY_MAX_WAIT_MS, RETRY_WAIT_MS * 2 ** (n - 1)) * (0.5 + Math.random());
      if (n < MAX_TRIES) await sleep(Math.max(retryAfter > 0 ? retryAfter * 1000 : 0, backoff));
    }
    return record;
  }

  /** An inbound SMS as Twilio posts it, signed; delivered now and again later by the redeliverer. */
  private async receive(n: number, onRedelivery: (redeliver: () => Promise<void>) => void): Promise<void> {
    const sid = `SM${this.run}${String(n).padStart(24, "0")}`.slice(0, 34);
    const url = `${this.workerUrl}/api/v1/webhooks/twilio`;
    const params = new URLSearchParams({ MessageSid: sid, AccountSid: SANDBOX_CREDENTIALS.twilioAccountSid, From: `+13036${String(n).padStart(6, "0")}`, To: "+12025550100", Body: `inbound ${n}`, NumMedia: "0" });
    const headers = { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilioSignature(SANDBOX_CREDENTIALS.twilioAuthToken, url, params) };
    const record: InboundRecord = { sid, answers: [] };
    this.inbound.push(record);
    const deliver = async () => {
      const answer = await this.request(`inbound webhook ${sid}`, url, params.toString(), headers);
      record.answers.push(answer.status);
    };
    await deliver();
    onRedelivery(deliver);
  }
}
