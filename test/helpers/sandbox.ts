// The provider sandbox (dev/provider-sandbox.ts, started by the global setup) as tests use it from
// the Workers runtime: a config whose live clients talk to it, outcome programming, and what it
// received and produced. Recipients are unique per call, so tests never share a behaviour queue.
import { env } from "cloudflare:test";
import { loadConfig, type Config } from "../../src/config";
import { sql } from "./db";
import type { OutboundMessage } from "../../src/providers/types";
import {
  SANDBOX_CREDENTIALS,
  type CallbackRecord,
  type CallbackSpec,
  type CredentialStates,
  type ForeignMessageSpec,
  type OutcomeSpec,
  type RecordedRequest,
  type SentMail,
} from "../../dev/sandbox/api";

export { SANDBOX_CREDENTIALS };
export type { CallbackRecord, RecordedRequest, SentMail };

/** A Twilio Message resource as the sandbox stores it (Twilio's field names), plus what only the sandbox knows. */
export interface SandboxTwilioMessage {
  sid: string;
  to: string;
  from: string | null;
  body: string;
  status: string;
  date_created: string;
  date_sent: string | null;
  price: string | null;
  /** our message id, from the StatusCallback URL */
  messageId: string | null;
  /** inserted as another system's message */
  foreign: boolean;
  /** queued until released */
  held: boolean;
  [field: string]: unknown;
}

export const sandboxUrl = (): string => (env as unknown as { PROVIDER_SANDBOX_URL: string }).PROVIDER_SANDBOX_URL;

/** Config with both providers live against the sandbox; overrides win (undefined removes a setting). */
export function sandboxConfig(overrides: Record<string, string | undefined> = {}): Config {
  const vars: Record<string, unknown> = {
    ...env,
    PROVIDER_MODE: "live",
    TWILIO_API_BASE_URL: sandboxUrl(),
    SENDGRID_API_BASE_URL: sandboxUrl(),
    TWILIO_ACCOUNT_SID: SANDBOX_CREDENTIALS.twilioAccountSid,
    TWILIO_AUTH_TOKEN: SANDBOX_CREDENTIALS.twilioAuthToken,
    SENDGRID_API_KEY: SANDBOX_CREDENTIALS.sendgridApiKey,
    PUBLIC_BASE_URL: "https://msg.example.com",
    // The suite's bindings use API-key auth; these tests pick their auth explicitly.
    TWILIO_API_KEY_SID: undefined,
    TWILIO_API_KEY_SECRET: undefined,
    ...overrides,
  };
  for (const [key, value] of Object.entries(vars)) if (value === undefined) delete vars[key];
  return loadConfig(vars);
}

let counter = 0;
/**
 * A recipient number no other test uses (+1 404 ...). Every test file of a run shares one sandbox,
 * so each file takes its own block from a sequence in the run's Postgres database: a random block
 * per file gave two of some 40 files the same numbers often enough to fail CI (a request seen
 * twice), and a counter in Redis started again after scheduled.test.ts's FLUSHDB (the same).
 */
const [taken] = await sql<{ n: string }>("select nextval('test_recipient_block') as n");
const runBlock = 100 + (Number(taken!.n) % 900);
export function uniquePhone(): string {
  counter += 1;
  return `+1404${runBlock}${String(counter).padStart(4, "0")}`;
}
export function uniqueEmail(): string {
  counter += 1;
  return `rcpt-${runBlock}-${counter}@example.com`;
}

export function outbound(fields: Partial<OutboundMessage> & Pick<OutboundMessage, "type" | "to">): OutboundMessage {
  return {
    id: crypto.randomUUID(),
    from: fields.type === "email" ? "sender@example.com" : "+15551230000",
    body: "Hello from the tests",
    attachments: [],
    metadata: {},
    attempt: 1,
    claimSeq: 1,
    createdAt: new Date().toISOString(),
    ambiguousAttempt: false,
    ambiguousWindows: [],
    optedOut: false,
    ...fields,
  };
}

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${sandboxUrl()}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`sandbox ${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json<T>();
}

/** Queue outcomes for a recipient (consumed one per provider request, then "ok"). */
export function programme(to: string, outcomes: OutcomeSpec[], callbacks?: CallbackSpec): Promise<unknown> {
  return control("POST", "/__sandbox/behaviour", { to, outcomes, callbacks });
}

/** An outage for every recipient starting with `prefix`: outcomes in turn, cycling; [] ends it. */
export function fault(prefix: string, outcomes: OutcomeSpec[]): Promise<unknown> {
  return control("POST", "/__sandbox/fault", { prefix, outcomes });
}

export async function received(to: string): Promise<RecordedRequest[]> {
  return (await control<{ requests: RecordedRequest[] }>("GET", `/__sandbox/requests?to=${encodeURIComponent(to)}`)).requests;
}

export async function producedCallbacks(to: string): Promise<CallbackRecord[]> {
  return (await control<{ callbacks: CallbackRecord[] }>("GET", `/__sandbox/callbacks?to=${encodeURIComponent(to)}`)).callbacks;
}

export async function sandboxInfo(): Promise<{ twilio: { accountSid: string; authToken: string }; sendgrid: { apiKey: string; webhookPublicKey: string } }> {
  return control("GET", "/__sandbox/info");
}

/** A URL the sandbox serves as an attachment: `bytes` deterministic bytes (byte i = i % 256). */
export function sandboxFile(name: string, params: Record<string, string | number> = {}): string {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  return `${sandboxUrl()}/__sandbox/files/${name}${query.size > 0 ? `?${query}` : ""}`;
}

/** Catches the ProviderError a call throws, failing the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<import("../../src/providers/types").ProviderError> {
  try {
    await promise;
  } catch (error) {
    return error as import("../../src/providers/types").ProviderError;
  }
  throw new Error("expected the provider call to fail");
}

/** Twilio messages the sandbox accepted for a recipient (Twilio's JSON shape), oldest first; foreign ones left out. */
export async function acceptedTwilioMessages(to: string): Promise<SandboxTwilioMessage[]> {
  return (await twilioMessages(to)).filter((m) => !m.foreign);
}

/** Every Twilio message to a recipient, foreign ones included, oldest first. */
export async function twilioMessages(to: string): Promise<SandboxTwilioMessage[]> {
  return (await control<{ twilio: SandboxTwilioMessage[] }>("GET", `/__sandbox/messages?to=${encodeURIComponent(to)}`)).twilio;
}

/** Mails SendGrid accepted with this recipient among to, cc or bcc, parsed (subject, text, html, from, reply_to, cc, bcc). */
export async function sentMails(to: string): Promise<SentMail[]> {
  return (await control<{ sendgrid: SentMail[] }>("GET", `/__sandbox/messages?to=${encodeURIComponent(to)}`)).sendgrid;
}

/**
 * Account-wide credentials: "revoked" makes every Twilio REST call answer 401 (20003) and SendGrid
 * 401; SendGrid "forbidden" answers 403 (a key without mail.send). Restore with "valid".
 */
export function setCredentials(states: CredentialStates): Promise<unknown> {
  return control("POST", "/__sandbox/credentials", states);
}

/** Sends the Twilio messages held for `to` (callbacks.hold); returns their sids. */
export async function release(to: string): Promise<string[]> {
  return (await control<{ released: string[] }>("POST", "/__sandbox/release", { to })).released;
}

/** A Twilio message as if another system on the same account had sent it: listed, never created by us. */
export function insertForeignMessage(spec: ForeignMessageSpec): Promise<SandboxTwilioMessage> {
  return control("POST", "/__sandbox/foreign-message", spec);
}

/** Basic auth the sandbox accepts for the Twilio account. */
export const twilioAuthorization = (): string => `Basic ${btoa(`${SANDBOX_CREDENTIALS.twilioAccountSid}:${SANDBOX_CREDENTIALS.twilioAuthToken}`)}`;

/** GET a Twilio Messages list (a path + query as next_page_uri gives it, or the query alone), raw. */
export async function listTwilio(query: Record<string, string> | string): Promise<{ status: number; body: any }> {
  const path =
    typeof query === "string" && query.startsWith("/")
      ? query
      : `/2010-04-01/Accounts/${SANDBOX_CREDENTIALS.twilioAccountSid}/Messages.json?${new URLSearchParams(query).toString()}`;
  const res = await fetch(`${sandboxUrl()}${path}`, { headers: { authorization: twilioAuthorization() } });
  return { status: res.status, body: await res.json() };
}

/** Requests the sandbox received on paths that are neither Twilio's nor SendGrid's (callbacks posted to itself). */
export async function strayRequests(): Promise<RecordedRequest[]> {
  return (await control<{ requests: RecordedRequest[] }>("GET", "/__sandbox/requests?provider=unknown")).requests;
}
