// The provider sandbox (dev/provider-sandbox.ts, started by the global setup) as tests use it from
// the Workers runtime: a config whose live clients talk to it, outcome programming, and what it
// received and produced. Recipients are unique per call, so tests never share a behaviour queue.
import { env } from "cloudflare:test";
import { loadConfig, type Config } from "../../src/config";
import type { OutboundMessage } from "../../src/providers/types";
import { SANDBOX_CREDENTIALS, type CallbackRecord, type CallbackSpec, type OutcomeSpec, type RecordedRequest } from "../../dev/sandbox/api";

export { SANDBOX_CREDENTIALS };
export type { CallbackRecord, RecordedRequest };

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
/** A recipient number no other test uses (+1 404 ...), from a per-run random block. */
const runBlock = Math.floor(Math.random() * 900) + 100;
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

/** Twilio messages the sandbox accepted for a recipient (Twilio's JSON shape), oldest first. */
export async function acceptedTwilioMessages(to: string): Promise<{ sid: string; body: string; status: string; from: string }[]> {
  return (await control<{ twilio: { sid: string; body: string; status: string; from: string }[] }>("GET", `/__sandbox/messages?to=${encodeURIComponent(to)}`)).twilio;
}

/** Requests the sandbox received on paths that are neither Twilio's nor SendGrid's (callbacks posted to itself). */
export async function strayRequests(): Promise<RecordedRequest[]> {
  return (await control<{ requests: RecordedRequest[] }>("GET", "/__sandbox/requests?provider=unknown")).requests;
}
