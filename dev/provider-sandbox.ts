// A local stand-in for Twilio and SendGrid that the real clients (src/providers/twilio.ts,
// sendgrid.ts) talk to unchanged in development and tests: point TWILIO_API_BASE_URL and
// SENDGRID_API_BASE_URL at it. It records every provider request, answers per programmable
// behaviour keyed by recipient (errors, 429 with Retry-After, hangs, "accept then hang" — the
// ambiguous outcome), and produces signed Twilio status callbacks and SendGrid events, which it
// either posts (development) or holds for a test to replay through the Worker (tests, where the
// Worker listens on no port).
//
// Control API (JSON):
//   POST /__sandbox/behaviour  {"to": "+15550001111", "outcomes": ["500", "500", "ok"], "callbacks": {...}}
//        outcomes are consumed one per request for that recipient, then "ok"; see OutcomeSpec
//        callbacks: {"mode": "post"|"hold"|"off", "statuses": [...], "duplicate": true, "reverse": true, "delayMs": 50}
//   POST /__sandbox/fault  {"prefix": "+1404", "outcomes": ["429:2"]}   every recipient starting with
//        prefix ("" or absent = all) gets these outcomes in turn, cycling, until cleared with
//        "outcomes": []; a recipient's own behaviour comes first
//        callbacks.holdMs / callbacks.hold (Twilio): how long an accepted message stays queued
//        (date_sent null) before it is sent; hold = until POST /__sandbox/release
//   POST /__sandbox/release  [{"to": ...}]   send the held Twilio messages (to one recipient, or all)
//   POST /__sandbox/credentials  {"twilio": "revoked"|"valid", "sendgrid": "revoked"|"forbidden"|"valid"}
//        account-wide: every Twilio REST call answers 401 (20003); SendGrid 401, or 403 without mail.send
//   POST /__sandbox/foreign-message  {"to", "from", "body", "date_created"?, "date_sent"?, "status"?}
//        a Twilio message as if another system on the account had sent it: listed, never ours
//   GET  /__sandbox/requests?to=&provider=   what it received: method, path, query, headers, body, time,
//        outcome, messageId (ours, from the StatusCallback URL or custom_args)
//   GET  /__sandbox/messages?to=             Twilio messages (with messageId, foreign, held) and the
//        parsed SendGrid mails (subject, text, html, from, reply_to, cc, bcc, ...)
//   GET  /__sandbox/callbacks?to=&provider=  callbacks/events it produced (URL, signed headers, body, answer)
//   POST /__sandbox/reset  [{"to": ...}]     forget everything, or one recipient
//   GET  /__sandbox/info                     credentials it accepts, their state, the SendGrid webhook public key
//   POST /__receiver/<name>                  a customer's status webhook receiver (dev/sandbox/receiver.ts):
//        records the delivery and answers as programmed with POST /__sandbox/receiver
//        {"name", "answers": ["500", "200", "hang", "slow:3000"]}; GET /__sandbox/receiver?name= lists them
//   GET  /__sandbox/files/<name>?bytes=N&type=T[&status=S][&fail=K[&failstatus=F]][&auth=twilio]
//        a file to use as an attachment or media URL: N deterministic bytes (byte i = i % 256) of
//        content type T, or answer status S. fail=K: the first K requests for this exact URL answer
//        F (default 500), later ones the file (a media fetch that fails, then succeeds).
//        auth=twilio: like Twilio's media URLs, only with HTTP Basic auth of the account (SID and
//        auth token) or an API key (SID and secret); else 401.
//
// `npx tsx dev/provider-sandbox.ts` runs it alone (PROVIDER_SANDBOX_PORT, default 8077).
import http from "node:http";
import { pathToFileURL } from "node:url";
import {
  SandboxState,
  flatHeaders,
  outcomeLabel,
  parseForm,
  parseOutcome,
  readBody,
  recipientKey,
  sendJson,
  sleep,
  type Action,
  type CallbackSpec,
  type OutcomeSpec,
  type RecordedRequest,
} from "./sandbox/shared.ts";
import { TwilioSandbox, messageIdFromCallbackUrl, twilioError, type TwilioCredentials, type TwilioMessage } from "./sandbox/twilio.ts";
import { SendGridSandbox, sendgridError, sendgridForbidden, sendgridRateLimitHeaders } from "./sandbox/sendgrid.ts";
import { Receiver, type ReceivedWebhook } from "./sandbox/receiver.ts";
import { SANDBOX_CREDENTIALS, type CallbackRecord, type CredentialStates, type ForeignMessageSpec, type SentMail } from "./sandbox/api.ts";

export type {
  CallbackRecord,
  CallbackSpec,
  CredentialStates,
  ForeignMessageSpec,
  OutcomeSpec,
  RecordedRequest,
  SentMail,
} from "./sandbox/shared.ts";
export type { TwilioMessage } from "./sandbox/twilio.ts";
export { twilioSignature } from "./sandbox/twilio.ts";

export { SANDBOX_CREDENTIALS } from "./sandbox/api.ts";

export interface ProviderSandboxOptions {
  /** 0 = random (the default) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  twilio?: Partial<TwilioCredentials>;
  sendgridApiKey?: string;
  /** callback behaviour for recipients without their own; default {mode: "hold"} */
  callbacks?: CallbackSpec;
  /** where SendGrid events go, e.g. http://127.0.0.1:8080/api/v1/webhooks/sendgrid */
  sendgridEventsUrl?: string;
}

export interface ProviderSandbox {
  url: string;
  twilio: TwilioCredentials;
  sendgrid: { apiKey: string; webhookPublicKey: string };
  requests(to?: string): RecordedRequest[];
  callbacks(to?: string): CallbackRecord[];
  setBehaviour(to: string, outcomes: OutcomeSpec[], callbacks?: CallbackSpec): void;
  /** an outage for every recipient starting with `prefix` ("" = all); no outcomes ends it */
  setFault(outcomes: OutcomeSpec[], prefix?: string): void;
  /**
   * messages it accepted (Twilio messages and SendGrid mails; one entry per `to` recipient), with
   * our message id; foreign Twilio messages are not among them
   */
  accepted(): { provider: "twilio" | "sendgrid"; id: string; to: string; messageId: string | null }[];
  /** Twilio messages as the Messages list shows them, foreign ones included, oldest first */
  twilioMessages(to?: string): TwilioMessage[];
  /** SendGrid mails it accepted, parsed, oldest first */
  mails(to?: string): SentMail[];
  /** account-wide credential states; reset() makes both valid again */
  setCredentials(states: CredentialStates): void;
  /** sends the Twilio messages held (callbacks.hold) for `to`, or all; returns their sids */
  release(to?: string): string[];
  /** a Twilio message as if another system on the same account had sent it */
  insertForeignMessage(spec: ForeignMessageSpec): TwilioMessage;
  /** the customers' status webhook receivers (POST /__receiver/<name>), in process */
  receiver: { programme(name: string, answers: string[]): void; received(name?: string): ReceivedWebhook[] };
  reset(to?: string): void;
  close(): Promise<void>;
}

const TWILIO_MESSAGES = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const TWILIO_MESSAGE = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/;

export async function startProviderSandbox(opts: ProviderSandboxOptions = {}): Promise<ProviderSandbox> {
  const state = new SandboxState();
  const defaults: CallbackSpec = { mode: "hold", ...opts.callbacks };
  const twilio = new TwilioSandbox(
    state,
    {
      accountSid: opts.twilio?.accountSid ?? SANDBOX_CREDENTIALS.twilioAccountSid,
      authToken: opts.twilio?.authToken ?? SANDBOX_CREDENTIALS.twilioAuthToken,
      apiKeys: opts.twilio?.apiKeys ?? { [SANDBOX_CREDENTIALS.twilioApiKeySid]: SANDBOX_CREDENTIALS.twilioApiKeySecret },
    },
    defaults,
  );
  const sendgrid = new SendGridSandbox(state, opts.sendgridApiKey ?? SANDBOX_CREDENTIALS.sendgridApiKey, defaults, opts.sendgridEventsUrl);
  const receiver = new Receiver();

  function record(req: http.IncomingMessage, url: URL, raw: Buffer, provider: RecordedRequest["provider"]): RecordedRequest {
    const rawBody = raw.toString("utf8");
    const type = String(req.headers["content-type"] ?? "");
    let body: unknown = null;
    if (type.startsWith("application/x-www-form-urlencoded")) body = parseForm(rawBody);
    else if (type.startsWith("application/json")) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = null;
      }
    }
    const entry: RecordedRequest = {
      seq: state.nextSeq(),
      time: new Date().toISOString(),
      provider,
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search.slice(1),
      headers: flatHeaders(req),
      rawBody,
      body,
      to: null,
      messageId: ourMessageId(provider, body),
      outcome: null,
    };
    state.requests.push(entry);
    return entry;
  }

  /** Hang (keep the socket open until the client gives up) or reset (RST after reading it all). */
  function withhold(req: http.IncomingMessage, action: Extract<Action, { kind: "hang" | "reset" }>): void {
    if (action.kind === "reset") req.socket.resetAndDestroy();
  }

  async function twilioCreate(req: http.IncomingMessage, res: http.ServerResponse, entry: RecordedRequest, account: string): Promise<void> {
    const form = (entry.body ?? {}) as Record<string, string | string[]>;
    const to = typeof form.To === "string" ? form.To : null;
    entry.to = to === null ? null : recipientKey(to);
    if (!twilio.authorized(req, account)) {
      entry.outcome = "20003";
      return twilioError(res, 401, 20003);
    }
    const { action, label, callbacks } = state.take(to);
    entry.outcome = label;
    if (action.kind === "error") {
      const headers: Record<string, string> = { ...action.headers };
      if (action.retryAfter !== undefined) headers["retry-after"] = String(action.retryAfter);
      if (action.body !== undefined) {
        res.writeHead(action.status, { "content-type": "text/html", ...headers });
        return void res.end(action.body);
      }
      return twilioError(res, action.status, action.code, action.message, headers);
    }
    const accepts = action.kind === "accept" || action.kind === "slow" || action.accept;
    if (accepts) {
      const invalid = twilio.validate(form);
      if (invalid !== null) {
        entry.outcome = String(invalid);
        return twilioError(res, 400, invalid);
      }
    }
    const created = accepts ? twilio.accept(form, callbacks) : null;
    if (action.kind === "hang" || action.kind === "reset") {
      withhold(req, action);
      return created?.begin();
    }
    try {
      if (action.kind === "slow") await sleep(action.ms);
      sendJson(res, 201, created!.answer);
    } finally {
      // After the answer, never before: the create answer shows the message queued. Twilio
      // accepted it, so it goes out even if the client has gone away meanwhile.
      created!.begin();
    }
  }

  async function sendgridSend(req: http.IncomingMessage, res: http.ServerResponse, entry: RecordedRequest, bytes: number): Promise<void> {
    const body = entry.body as Record<string, any> | null;
    const first = body?.personalizations?.[0]?.to?.[0]?.email;
    const to = typeof first === "string" ? first : null;
    entry.to = to === null ? null : recipientKey(to);
    const refusal = sendgrid.refusal(req);
    if (refusal === "revoked") {
      entry.outcome = "401";
      return sendgridError(res, 401);
    }
    if (refusal === "forbidden") {
      entry.outcome = "403";
      return sendgridForbidden(res);
    }
    const { action, label, callbacks } = state.take(to);
    entry.outcome = label;
    if (action.kind === "error") {
      const headers: Record<string, string> = { ...action.headers };
      if (action.status === 429) Object.assign(headers, sendgridRateLimitHeaders(action.retryAfter ?? 1));
      else if (action.retryAfter !== undefined) headers["retry-after"] = String(action.retryAfter);
      if (action.body !== undefined) {
        res.writeHead(action.status, { "content-type": "text/html", ...headers });
        return void res.end(action.body);
      }
      return sendgridError(res, action.status, action.message, null, headers);
    }
    const accepts = action.kind === "accept" || action.kind === "slow" || action.accept;
    let messageId: string | null = null;
    if (accepts) {
      const invalid = sendgrid.validate(body, bytes);
      if (invalid) {
        entry.outcome = String(invalid.status);
        return sendJson(res, invalid.status, { errors: invalid.errors });
      }
      messageId = sendgrid.accept(body!, callbacks);
    }
    if (action.kind === "hang" || action.kind === "reset") return withhold(req, action);
    if (action.kind === "slow") await sleep(action.ms);
    res.writeHead(202, { "x-message-id": messageId!, "content-length": "0" });
    res.end();
  }

  async function control(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer): Promise<void> {
    const route = `${req.method} ${url.pathname}`;
    const to = url.searchParams.get("to");
    const provider = url.searchParams.get("provider");
    const json = () => (raw.length === 0 ? {} : (JSON.parse(raw.toString("utf8")) as Record<string, any>));
    switch (route) {
      case "POST /__sandbox/behaviour": {
        const body = json();
        if (typeof body.to !== "string" || body.to.trim() === "") return sendJson(res, 400, { error: "to is required" });
        const outcomes: OutcomeSpec[] = Array.isArray(body.outcomes) ? body.outcomes : [];
        try {
          setBehaviour(body.to, outcomes, body.callbacks);
        } catch (error) {
          return sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        }
        return sendJson(res, 200, { ok: true });
      }
      case "POST /__sandbox/fault": {
        const body = json();
        const prefix = typeof body.prefix === "string" ? body.prefix : "";
        try {
          state.setFault(prefix, Array.isArray(body.outcomes) ? body.outcomes : []);
        } catch (error) {
          return sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        }
        return sendJson(res, 200, { ok: true });
      }
      case "GET /__sandbox/requests":
        return sendJson(res, 200, {
          requests: state.requests.filter((r) => (to === null || r.to === recipientKey(to)) && (provider === null || r.provider === provider)),
        });
      case "GET /__sandbox/messages":
        return sendJson(res, 200, {
          twilio: twilioMessages(to ?? undefined).map((m) => ({ ...m, ...twilio.describe(m.sid) })),
          sendgrid: mails(to ?? undefined),
        });
      case "POST /__sandbox/release": {
        const body = json();
        return sendJson(res, 200, { released: twilio.release(typeof body.to === "string" ? body.to : undefined) });
      }
      case "POST /__sandbox/credentials":
        try {
          state.setCredentials(json());
        } catch (error) {
          return sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        }
        return sendJson(res, 200, { credentials: state.credentials });
      case "POST /__sandbox/foreign-message":
        try {
          return sendJson(res, 201, twilio.insertForeign(json() as ForeignMessageSpec));
        } catch (error) {
          return sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        }
      case "GET /__sandbox/callbacks":
        return sendJson(res, 200, {
          callbacks: state.callbacks.filter((c) => (to === null || c.to === recipientKey(to)) && (provider === null || c.provider === provider)),
        });
      case "POST /__sandbox/reset": {
        const body = json();
        reset(typeof body.to === "string" ? body.to : undefined);
        return sendJson(res, 200, { ok: true });
      }
      case "GET /__sandbox/info":
        return sendJson(res, 200, info());
      default:
        if (req.method === "GET" && url.pathname.startsWith("/__sandbox/files/")) return file(req, res, url);
        return sendJson(res, 404, { error: `no sandbox route ${route}` });
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sandbox");
    const raw = await readBody(req);
    if (url.pathname.startsWith("/__sandbox/receiver")) {
      if (await receiver.control(req, res, url, raw)) return;
    }
    if (url.pathname.startsWith("/__sandbox/")) return control(req, res, url, raw);
    if (url.pathname.startsWith("/__receiver/") && req.method === "POST") return receiver.handle(req, res, decodeURIComponent(url.pathname.slice("/__receiver/".length)), raw);

    const list = TWILIO_MESSAGES.exec(url.pathname);
    const one = TWILIO_MESSAGE.exec(url.pathname);
    if (list || one) {
      const entry = record(req, url, raw, "twilio");
      const account = (list ?? one)![1]!;
      if (list && req.method === "POST") return twilioCreate(req, res, entry, account);
      if (list && req.method === "GET") entry.to = url.searchParams.get("To");
      if (!twilio.authorized(req, account)) {
        entry.outcome = "20003";
        return twilioError(res, 401, 20003);
      }
      if (list && req.method === "GET") {
        const answer = twilio.list(`/2010-04-01/Accounts/${account}`, url.searchParams);
        entry.outcome = answer.status === 200 ? "ok" : String(answer.status);
        return sendJson(res, answer.status, answer.body);
      }
      if (one && req.method === "GET") {
        const message = twilio.messages.get(one[2]!);
        return message ? sendJson(res, 200, message) : twilioError(res, 404, 20404);
      }
      return twilioError(res, 405, 20004, "Method not allowed");
    }
    if (url.pathname === "/v3/mail/send") {
      const entry = record(req, url, raw, "sendgrid");
      if (req.method !== "POST") return sendgridError(res, 405, "Method not allowed");
      return sendgridSend(req, res, entry, raw.length);
    }
    record(req, url, raw, "unknown");
    sendJson(res, 404, { error: "not a Twilio or SendGrid path the sandbox knows" });
  }

  /** Deterministic attachment content, so a test can predict the exact base64 a client sends. */
  /** Requests per file URL, for fail=K. */
  const fileHits = new Map<string, number>();

  function twilioBasicAuth(header: string | undefined): boolean {
    const match = /^Basic (.+)$/.exec(header ?? "");
    if (!match) return false;
    const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const [user, secret] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    const creds = twilio.credentials;
    return (user === creds.accountSid && secret === creds.authToken) || (creds.apiKeys?.[user] !== undefined && creds.apiKeys[user] === secret);
  }

  function file(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (url.searchParams.get("auth") === "twilio" && !twilioBasicAuth(req.headers.authorization)) {
      return sendJson(res, 401, { code: 20003, message: "Authenticate", status: 401 });
    }
    const hits = (fileHits.get(url.href) ?? 0) + 1;
    fileHits.set(url.href, hits);
    if (hits <= Number(url.searchParams.get("fail") ?? 0)) {
      const failStatus = Number(url.searchParams.get("failstatus") ?? 500);
      return sendJson(res, failStatus, { error: `HTTP ${failStatus} (failure ${hits})` });
    }
    const status = Number(url.searchParams.get("status") ?? 200);
    if (status !== 200) return sendJson(res, status, { error: `HTTP ${status}` });
    const size = Math.min(64 * 1024 * 1024, Math.max(0, Number(url.searchParams.get("bytes") ?? 16) || 0));
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = i % 256;
    const headers: Record<string, string> = { "content-type": url.searchParams.get("type") ?? "application/octet-stream" };
    // chunked=1 leaves out Content-Length, so a client must count the bytes as they come.
    if (url.searchParams.get("chunked") !== "1") headers["content-length"] = String(size);
    res.writeHead(200, headers);
    res.end(bytes);
  }

  function setBehaviour(to: string, outcomes: OutcomeSpec[], callbacks?: CallbackSpec): void {
    const actions = outcomes.map(parseOutcome);
    const labels = outcomes.map(outcomeLabel);
    state.behaviours.set(recipientKey(to), { outcomes: actions, labels, callbacks });
  }

  function reset(to?: string): void {
    state.reset(to);
    if (to === undefined) {
      receiver.reset();
      twilio.clear();
      sendgrid.mails.clear();
    }
  }

  function twilioMessages(to?: string): TwilioMessage[] {
    return [...twilio.messages.values()].filter((m) => to === undefined || m.to === to).map((m) => ({ ...m }));
  }

  function mails(to?: string): SentMail[] {
    return [...sendgrid.mails.values()].filter((m) => to === undefined || m.recipients.includes(recipientKey(to)));
  }

  function info() {
    return {
      twilio: { accountSid: twilio.credentials.accountSid, authToken: twilio.credentials.authToken, apiKeys: twilio.credentials.apiKeys },
      sendgrid: { apiKey: sendgrid.apiKey, webhookPublicKey: sendgrid.publicKey, eventsUrl: opts.sendgridEventsUrl ?? null },
      credentials: state.credentials,
    };
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
      else res.destroy();
    });
  });
  // Hung requests must stay hung as long as the client waits, not until Node's own timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;

  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const address = server.address() as import("node:net").AddressInfo;
  const url = `http://${host}:${address.port}`;

  return {
    url,
    twilio: twilio.credentials,
    sendgrid: { apiKey: sendgrid.apiKey, webhookPublicKey: sendgrid.publicKey },
    requests: (to) => state.requests.filter((r) => to === undefined || r.to === recipientKey(to)),
    callbacks: (to) => state.callbacks.filter((c) => to === undefined || c.to === recipientKey(to)),
    setBehaviour,
    setFault: (outcomes, prefix = "") => state.setFault(prefix, outcomes),
    accepted: () => [
      ...[...twilio.messages.values()]
        .filter((m) => !twilio.describe(m.sid).foreign)
        .map((m) => ({ provider: "twilio" as const, id: m.sid, to: recipientKey(m.to), messageId: twilio.describe(m.sid).messageId })),
      ...[...sendgrid.mails.values()].flatMap((m) =>
        m.personalizations.flatMap((p) => p.to.map((t) => ({ provider: "sendgrid" as const, id: m.sgMessageId, to: recipientKey(t.email), messageId: m.messageId }))),
      ),
    ],
    twilioMessages,
    mails,
    setCredentials: (states) => state.setCredentials(states),
    release: (to) => twilio.release(to),
    insertForeignMessage: (spec) => twilio.insertForeign(spec),
    receiver: { programme: (name, answers) => receiver.programme(name, answers), received: (name) => receiver.list(name ?? null) },
    reset,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The service's message id a provider request carries: Twilio's StatusCallback `message_id`, SendGrid's custom_args. */
function ourMessageId(provider: RecordedRequest["provider"], body: unknown): string | null {
  if (provider === "twilio") {
    const callback = (body as Record<string, unknown> | null)?.StatusCallback;
    return messageIdFromCallbackUrl(Array.isArray(callback) ? callback[0] : callback);
  }
  if (provider === "sendgrid") {
    const id = (body as { personalizations?: { custom_args?: { message_id?: unknown } }[] } | null)?.personalizations?.[0]?.custom_args?.message_id;
    return typeof id === "string" ? id : null;
  }
  return null;
}

// Run alone: `npx tsx dev/provider-sandbox.ts`; callbacks and events are posted, not held.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sandbox = await startProviderSandbox({
    port: Number(process.env.PROVIDER_SANDBOX_PORT ?? 8077),
    callbacks: { mode: "post" },
    sendgridEventsUrl: process.env.SENDGRID_EVENTS_URL,
  });
  console.log(`provider sandbox on ${sandbox.url}`);
  console.log(`  TWILIO_API_BASE_URL=${sandbox.url} SENDGRID_API_BASE_URL=${sandbox.url}`);
  console.log(`  TWILIO_ACCOUNT_SID=${sandbox.twilio.accountSid} TWILIO_AUTH_TOKEN=${sandbox.twilio.authToken} SENDGRID_API_KEY=${sandbox.sendgrid.apiKey}`);
  console.log(`  SENDGRID_WEBHOOK_PUBLIC_KEY=${sandbox.sendgrid.webhookPublicKey}`);
  const stop = () => void sandbox.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
