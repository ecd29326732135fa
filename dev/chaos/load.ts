// The chaos run's traffic: sends of mixed SMS/MMS/email at a steady rate, each to a recipient of
// its own (so that the provider's record shows per message how often it was sent), some with
// programmed provider answers and callback quirks; plus inbound SMS webhooks, each delivered twice.
import { SANDBOX_CREDENTIALS, twilioSignature, type ProviderSandbox } from "../provider-sandbox.ts";

export interface SendRecord {
  index: number;
  type: "sms" | "mms" | "email";
  to: string;
  /** HTTP status, or 0 when no answer came (connection refused or reset, timeout) */
  status: number;
  id?: string;
  /** the envelope's error code, or the connection error */
  error?: string;
  /** when the answer came, in seconds since the load started */
  atS: number;
}

export interface InboundRecord {
  sid: string;
  /** HTTP statuses of the first delivery and the redelivery (0: no answer) */
  answers: number[];
}

const TIMEOUT_MS = 20_000;
/** The most sends in flight at once; a slow service slows the load rather than piling it up. */
const MAX_IN_FLIGHT = 200;

/** Recipients: +1 303 5xx xxxx for SMS/MMS, chaos-<run>-<n>@example.com for email. */
export function recipient(run: string, index: number, type: SendRecord["type"]): string {
  if (type === "email") return `chaos-${run}-${index}@example.com`;
  return `+13035${String(index).padStart(6, "0")}`;
}

const typeOf = (index: number): SendRecord["type"] => (index % 5 === 3 ? "mms" : index % 5 === 4 ? "email" : "sms");

/**
 * Per-message provider behaviour, by index so that a run is reproducible: 3 % refused for good
 * (Twilio 21211, SendGrid 400), 5 % one 500 then accepted; callbacks duplicated, reversed or both
 * for about half.
 */
function programme(sandbox: ProviderSandbox, index: number, type: SendRecord["type"], to: string): void {
  const outcomes = index % 33 === 7 ? [type === "email" ? "400" : "21211"] : index % 20 === 11 ? ["500", "ok"] : [];
  const quirk = index % 6;
  const callbacks = { mode: "post" as const, duplicate: quirk === 1 || quirk === 3, reverse: quirk === 2 || quirk === 3 };
  if (outcomes.length > 0 || callbacks.duplicate || callbacks.reverse) sandbox.setBehaviour(to, outcomes, callbacks);
}

function sendBody(sandbox: ProviderSandbox, type: SendRecord["type"], to: string, index: number): string {
  if (type === "email") return JSON.stringify({ type, from: "chaos@example.com", to, body: `chaos message ${index}` });
  const base = { type, from: "+12025550100", to, body: `chaos message ${index}` };
  if (type === "sms") return JSON.stringify(base);
  return JSON.stringify({ ...base, attachments: [`${sandbox.url}/__sandbox/files/chaos-${index}.png?bytes=2048&type=image/png`] });
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; json?: any; error?: string }> {
  try {
    const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: 0, error: cause ?? (error instanceof Error ? error.name : String(error)) };
  }
}

export class Load {
  readonly sends: SendRecord[] = [];
  readonly inbound: InboundRecord[] = [];
  private inFlight = 0;
  private pending = new Set<Promise<unknown>>();
  private startedAt = performance.now();

  constructor(
    private readonly workerUrl: string,
    private readonly sandbox: ProviderSandbox,
    private readonly run: string,
  ) {}

  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Sends `messages` evenly over `durationS` seconds; resolves when every request has an answer. */
  async drive(messages: number, durationS: number, inboundEvery: number, onInboundRedelivery: (redeliver: () => Promise<void>) => void): Promise<void> {
    this.startedAt = performance.now();
    for (let index = 0; index < messages; index++) {
      const due = this.startedAt + (index * durationS * 1000) / messages;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      while (this.inFlight >= MAX_IN_FLIGHT) await Promise.race(this.pending);
      this.track(this.send(index));
      if (index % inboundEvery === 0) this.track(this.receive(index / inboundEvery, onInboundRedelivery));
    }
    await Promise.all(this.pending);
  }

  private track(work: Promise<unknown>): void {
    this.inFlight++;
    const tracked = work.finally(() => {
      this.inFlight--;
      this.pending.delete(tracked);
    });
    this.pending.add(tracked);
  }

  private async send(index: number): Promise<void> {
    const type = typeOf(index);
    const to = recipient(this.run, index, type);
    programme(this.sandbox, index, type, to);
    const answer = await post(`${this.workerUrl}/api/v1/messages/send`, sendBody(this.sandbox, type, to, index), { "content-type": "application/json" });
    const code = typeof answer.json?.error === "string" ? answer.json.error : undefined;
    const atS = (performance.now() - this.startedAt) / 1000;
    this.sends.push({ index, type, to, status: answer.status, id: answer.status === 201 ? answer.json?.id : undefined, error: answer.error ?? code, atS });
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
      const answer = await post(url, params.toString(), headers);
      record.answers.push(answer.status);
    };
    await deliver();
    onRedelivery(deliver);
  }
}
