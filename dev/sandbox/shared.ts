// Shared pieces of the provider sandbox (dev/provider-sandbox.ts): the state every request
// updates, programmable outcomes, and the callback log. Kept free of HTTP routing so that the
// Twilio and SendGrid halves stay small and read like the APIs they imitate.
import { boundedFetch } from "../bounded-fetch.ts";
import type http from "node:http";
import { randomBytes } from "node:crypto";
import type { CallbackRecord, CallbackSpec, CredentialStates, OutcomeSpec, RecordedRequest } from "./api.ts";

/** What the sandbox does with one provider request. */
export type Action =
  | { kind: "accept" }
  | { kind: "hang"; accept: boolean }
  | { kind: "reset"; accept: boolean }
  | { kind: "slow"; ms: number }
  | ({ kind: "error" } & import("./api.ts").ErrorOutcome);

export type {
  CallbackRecord,
  CallbackSpec,
  CredentialStates,
  ErrorOutcome,
  ForeignMessageSpec,
  MailAddress,
  OutcomeSpec,
  ProviderKind,
  RecordedRequest,
  SentMail,
} from "./api.ts";

export function parseOutcome(spec: OutcomeSpec): Action {
  if (typeof spec === "object" && spec !== null) {
    if (typeof spec.status !== "number" || spec.status < 100 || spec.status > 599) throw new Error("outcome.status must be an HTTP status");
    return { ...spec, kind: "error" };
  }
  const text = String(spec).trim().toLowerCase();
  if (text === "ok") return { kind: "accept" };
  if (text === "hang") return { kind: "hang", accept: false };
  if (text === "accept-then-hang") return { kind: "hang", accept: true };
  if (text === "reset") return { kind: "reset", accept: false };
  if (text === "accept-then-reset") return { kind: "reset", accept: true };
  const slow = /^slow:(\d+)$/.exec(text);
  if (slow) return { kind: "slow", ms: Number(slow[1]) };
  const numeric = /^(\d{3}|\d{5})(?::(\d+))?$/.exec(text);
  if (numeric) {
    const retryAfter = numeric[2] === undefined ? undefined : Number(numeric[2]);
    if (numeric[1]!.length === 3) return { kind: "error", status: Number(numeric[1]), retryAfter };
    const code = Number(numeric[1]);
    return { kind: "error", status: TWILIO_CODE_STATUS[code] ?? 400, code, retryAfter };
  }
  throw new Error(`unknown outcome "${String(spec)}"`);
}

export function outcomeLabel(spec: OutcomeSpec): string {
  return typeof spec === "string" ? spec.trim().toLowerCase() : String(spec.status);
}

/**
 * The simulator's magic recipients (src/providers/simulator.ts, docs/api.md), so that the
 * same numbers and addresses give the same outcomes with `npm run dev`'s sandbox.
 */
export function magicOutcome(to: string): string | undefined {
  const local = to.includes("@") ? to.slice(0, to.indexOf("@")) : null;
  if (to === "+15005550001") return "21211";
  if (to === "+15005550002") return "20429:1";
  if (to === "+15005550003" || local === "transient-failure") return "500";
  if (to === "+15005550004" || local === "timeout") return "hang";
  if (local === "permanent-failure") return "400";
  return undefined;
}

/** HTTP status Twilio answers with for its platform error codes; every 21xxx validation code is a 400. */
export const TWILIO_CODE_STATUS: Record<number, number> = { 20003: 401, 20404: 404, 20429: 429, 20500: 500, 20503: 503 };

export interface Behaviour {
  outcomes: Action[];
  labels: string[];
  callbacks?: CallbackSpec;
}

/**
 * An outage: every request for a recipient starting with `prefix` ("" = all) gets the outcomes in
 * turn, cycling, until it is cleared. Unlike a behaviour it is not consumed, so it models a
 * provider that misbehaves for a while whatever is sent.
 */
export interface Fault {
  prefix: string;
  outcomes: Action[];
  labels: string[];
  next: number;
}

export class SandboxState {
  requests: RecordedRequest[] = [];
  callbacks: CallbackRecord[] = [];
  behaviours = new Map<string, Behaviour>();
  faults: Fault[] = [];
  /** account-wide: every REST call of a revoked (or forbidden) provider is refused */
  credentials: Required<CredentialStates> = { twilio: "valid", sendgrid: "valid" };
  private seq = 0;

  nextSeq(): number {
    return ++this.seq;
  }

  setCredentials(states: CredentialStates): void {
    if (states.twilio !== undefined && !["valid", "revoked"].includes(states.twilio)) throw new Error('twilio must be "valid" or "revoked"');
    if (states.sendgrid !== undefined && !["valid", "revoked", "forbidden"].includes(states.sendgrid)) {
      throw new Error('sendgrid must be "valid", "revoked" or "forbidden"');
    }
    this.credentials = { ...this.credentials, ...states };
  }

  /** Replaces the fault for `prefix`; no outcomes clears it. */
  setFault(prefix: string, outcomes: OutcomeSpec[]): void {
    this.faults = this.faults.filter((f) => f.prefix !== prefix);
    if (outcomes.length === 0) return;
    this.faults.push({ prefix, outcomes: outcomes.map(parseOutcome), labels: outcomes.map(outcomeLabel), next: 0 });
  }

  /** The next programmed outcome for a recipient; else a fault's; else its magic outcome; else accept. */
  take(to: string | null): { action: Action; label: string; callbacks?: CallbackSpec } {
    const behaviour = to === null ? undefined : this.behaviours.get(recipientKey(to));
    const action = behaviour?.outcomes.shift();
    const label = behaviour?.labels.shift();
    if (action) return { action, label: label ?? "ok", callbacks: behaviour?.callbacks };
    const fault = to === null ? undefined : this.faults.find((f) => recipientKey(to).startsWith(f.prefix));
    if (fault) {
      const i = fault.next++ % fault.outcomes.length;
      return { action: fault.outcomes[i]!, label: fault.labels[i]!, callbacks: behaviour?.callbacks };
    }
    const magic = to === null ? undefined : magicOutcome(recipientKey(to));
    if (magic) return { action: parseOutcome(magic), label: magic, callbacks: behaviour?.callbacks };
    return { action: { kind: "accept" }, label: "ok", callbacks: behaviour?.callbacks };
  }

  reset(to?: string): void {
    if (to === undefined) {
      this.requests = [];
      this.callbacks = [];
      this.behaviours.clear();
      this.faults = [];
      this.credentials = { twilio: "valid", sendgrid: "valid" };
      return;
    }
    const key = recipientKey(to);
    this.requests = this.requests.filter((r) => r.to !== key);
    this.callbacks = this.callbacks.filter((c) => c.to !== key);
    this.behaviours.delete(key);
  }
}

/** Phone numbers as given (trimmed); email addresses lower-cased, as the sandbox keys behaviours. */
export function recipientKey(to: string): string {
  const t = to.trim();
  return t.includes("@") ? t.toLowerCase() : t;
}

export function readBody(req: http.IncomingMessage, limit = 50 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function flatHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** Form body → object; a repeated name (MediaUrl) becomes an array, in the order sent. */
export function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(text)) {
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
export function alphanumeric(length: number): string {
  return Array.from(randomBytes(length), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join("");
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One POST of a recorded callback, exactly as first signed; the answer's status or the error. */
export async function postCallback(record: Pick<CallbackRecord, "url" | "headers" | "body">): Promise<{ status?: number; error?: string }> {
  // bounded as a provider bounds its webhook calls (dev/bounded-fetch.ts says why not AbortSignal.timeout alone)
  const answer = await boundedFetch(record.url, { method: "POST", headers: record.headers, body: record.body }, 10_000);
  return answer.status === 0 ? { error: answer.error } : { status: answer.status };
}

/**
 * Posts recorded callbacks one after another (they are ordered: queued before sent before
 * delivered, unless reversed on purpose), recording each answer. Failures are recorded, never
 * thrown: the sandbox must keep serving while the service is down. With `retryDelaysMs`, a post
 * not answered 2xx is tried again after each delay in turn, as SendGrid does with events.
 */
export async function deliverInOrder(records: CallbackRecord[], delayMs: number, retryDelaysMs: number[] = []): Promise<void> {
  for (const record of records) {
    if (delayMs > 0) await sleep(delayMs);
    for (let retry = 0; ; retry++) {
      const answer = await postCallback(record);
      if (answer.status !== undefined) record.responseStatus = answer.status;
      record.error = answer.error;
      const answered = answer.status !== undefined && answer.status < 300;
      if (answered || retry >= retryDelaysMs.length) break;
      // unref: a pending retry must not keep a finished test run's process alive
      await new Promise((r) => setTimeout(r, retryDelaysMs[retry]!).unref());
    }
    record.delivered = true;
  }
}

/** Applies duplicate/reverse to the callbacks of one message. */
export function arrange<T>(items: T[], spec: CallbackSpec): T[] {
  let out = spec.reverse ? [...items].reverse() : [...items];
  if (spec.duplicate) out = out.flatMap((item) => [item, item]);
  return out;
}
