// The SendGrid half of the provider sandbox: POST /v3/mail/send with SendGrid's validation errors,
// 202 + X-Message-Id on success, and Event Webhook batches signed with ECDSA P-256 the way
// SendGrid signs them (DER signature over timestamp + body), so that the service's verifier
// (API-CONTRACT §9.8) can be exercised with the sandbox's public key.
import type http from "node:http";
import { createPrivateKey, createPublicKey, createSign, type KeyObject } from "node:crypto";
import { SANDBOX_SENDGRID_SIGNING_KEY } from "./api.ts";
import {
  alphanumeric,
  arrange,
  deliverInOrder,
  hex,
  sendJson,
  type CallbackRecord,
  type CallbackSpec,
  type SandboxState,
} from "./shared.ts";

/**
 * SendGrid posts events again when the endpoint does not answer 2xx; its own schedule is longer.
 * These keep a local run short while still letting a service that was down catch up.
 */
const EVENT_RETRY_DELAYS_MS = [2000, 4000, 8000, 16000, 30000];

/** SendGrid's cap on one mail/send request, attachments included. */
const MAX_MESSAGE_BYTES = 30 * 1024 * 1024;

export interface SendGridMail {
  messageId: string;
  to: string[];
  request: Record<string, unknown>;
  time: string;
}

const STATUS_MESSAGES: Record<number, string> = {
  400: "Bad Request",
  401: "The provided authorization grant is invalid, expired, or revoked",
  403: "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.",
  413: "The JSON payload you have included in your request is too large.",
  429: "too many requests",
  500: "Internal server error",
  503: "Service unavailable",
};

export function sendgridError(res: http.ServerResponse, status: number, message?: string, field: string | null = null, headers: Record<string, string> = {}): void {
  sendJson(res, status, { errors: [{ message: message ?? STATUS_MESSAGES[status] ?? `HTTP ${status}`, field, help: null }] }, headers);
}

/** SendGrid's rate-limit headers: the reset time is a unix timestamp, not a delay. */
export function sendgridRateLimitHeaders(retryAfterSeconds: number): Record<string, string> {
  return {
    "x-ratelimit-limit": "600",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + retryAfterSeconds),
  };
}

export class SendGridSandbox {
  readonly mails = new Map<string, SendGridMail>();
  private readonly privateKey: KeyObject;
  /** base64 DER SubjectPublicKeyInfo: the value for SENDGRID_WEBHOOK_PUBLIC_KEY */
  readonly publicKey: string;

  constructor(
    private readonly state: SandboxState,
    readonly apiKey: string,
    private readonly defaultCallbacks: CallbackSpec,
    private readonly eventsUrl: string | undefined,
    signingKey: string = SANDBOX_SENDGRID_SIGNING_KEY,
  ) {
    // A fixed key pair, so that SENDGRID_WEBHOOK_PUBLIC_KEY can be set before the sandbox starts.
    this.privateKey = createPrivateKey({ key: Buffer.from(signingKey, "base64"), format: "der", type: "pkcs8" });
    this.publicKey = createPublicKey(this.privateKey).export({ type: "spki", format: "der" }).toString("base64");
  }

  authorized(req: http.IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.apiKey}`;
  }

  /** SendGrid's checks on the mail/send body, in its words; null when the mail is acceptable. */
  validate(body: unknown, bytes: number): { status: number; message: string; field: string | null } | null {
    if (bytes > MAX_MESSAGE_BYTES) return { status: 413, message: STATUS_MESSAGES[413]!, field: null };
    if (typeof body !== "object" || body === null || Array.isArray(body)) return { status: 400, message: "Bad Request", field: null };
    const mail = body as Record<string, any>;
    if (!Array.isArray(mail.personalizations) || mail.personalizations.length === 0) {
      return { status: 400, message: "The personalizations field is required and must have at least one personalization.", field: "personalizations" };
    }
    for (const [i, p] of mail.personalizations.entries()) {
      if (!Array.isArray(p?.to) || p.to.length === 0 || p.to.some((t: any) => typeof t?.email !== "string" || !t.email.includes("@"))) {
        return { status: 400, message: "Each to object must at least have an email address.", field: `personalizations.${i}.to` };
      }
      if (p.custom_args !== undefined && Object.values(p.custom_args ?? {}).some((v) => typeof v !== "string")) {
        return { status: 400, message: "Custom args must be strings.", field: `personalizations.${i}.custom_args` };
      }
    }
    if (typeof mail.from?.email !== "string") return { status: 400, message: "The from object must be provided for every email send.", field: "from" };
    if (typeof mail.subject !== "string" || mail.subject.length === 0) {
      return { status: 400, message: "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.", field: "subject" };
    }
    if (!Array.isArray(mail.content) || mail.content.length === 0 || mail.content.some((c: any) => typeof c?.value !== "string" || c.value.length === 0)) {
      return { status: 400, message: "The content value must be a string at least one character in length.", field: "content.0.value" };
    }
    for (const [i, a] of (Array.isArray(mail.attachments) ? mail.attachments : []).entries()) {
      if (typeof a?.content !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(a.content)) {
        return { status: 400, message: "The attachment content must be base64 encoded.", field: `attachments.${i}.content` };
      }
      if (typeof a.filename !== "string" || a.filename.length === 0) {
        return { status: 400, message: "The attachment filename parameter is required.", field: `attachments.${i}.filename` };
      }
    }
    return null;
  }

  /** Stores an accepted mail under a fresh X-Message-Id and starts (or holds) its events. */
  accept(body: Record<string, any>, callbacks: CallbackSpec | undefined): string {
    const messageId = alphanumeric(22);
    const to = (body.personalizations as any[]).flatMap((p) => (p.to as any[]).map((t) => String(t.email).toLowerCase()));
    this.mails.set(messageId, { messageId, to, request: body, time: new Date().toISOString() });
    const spec = { ...this.defaultCallbacks, ...callbacks };
    const url = spec.url ?? this.eventsUrl;
    if (url && spec.mode !== "off") this.scheduleEvents(messageId, body, url, spec);
    return messageId;
  }

  private scheduleEvents(messageId: string, body: Record<string, any>, url: string, spec: CallbackSpec): void {
    const mode = spec.mode ?? "hold";
    if (mode === "off") return;
    const statuses = spec.statuses ?? ["processed", "delivered"];
    const sgMessageId = `${messageId}.filterdrecv-sandbox-1-${hex(4).toUpperCase()}-0.0`;
    const records: CallbackRecord[] = [];
    for (const personalization of body.personalizations as any[]) {
      for (const recipient of personalization.to as any[]) {
        const email = String(recipient.email).toLowerCase();
        for (const event of statuses) {
          // SendGrid copies custom_args to the top level of every event.
          const element: Record<string, unknown> = {
            email,
            timestamp: Math.floor(Date.now() / 1000),
            "smtp-id": `<${messageId}@sandbox.sendgrid.net>`,
            event,
            category: [],
            sg_event_id: alphanumeric(22),
            sg_message_id: sgMessageId,
            ...(body.custom_args ?? {}),
            ...(personalization.custom_args ?? {}),
          };
          if (event === "delivered") Object.assign(element, { response: "250 2.0.0 OK", tls: 1 });
          if (event === "bounce") Object.assign(element, { type: "bounce", status: "5.1.1", reason: "550 5.1.1 The email account that you tried to reach does not exist." });
          if (event === "dropped") Object.assign(element, { reason: "Bounced Address" });
          if (event === "deferred") Object.assign(element, { response: "450 4.2.1 Try again later", attempt: "1" });
          records.push(this.signedRecord(email, messageId, event, url, [element], mode));
        }
      }
    }
    const ordered = arrange(records, spec).map((r, i, all) => (all.indexOf(r) === i ? r : { ...r, seq: this.state.nextSeq() }));
    this.state.callbacks.push(...ordered);
    if (mode === "post") void deliverInOrder(ordered, spec.delayMs ?? 100, EVENT_RETRY_DELAYS_MS);
  }

  /** One Event Webhook POST: a JSON array, signed over timestamp + the exact body bytes. */
  private signedRecord(to: string, messageId: string, event: string, url: string, batch: unknown[], mode: "post" | "hold"): CallbackRecord {
    const body = JSON.stringify(batch);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createSign("SHA256").update(timestamp + body, "utf8").sign(this.privateKey).toString("base64");
    return {
      seq: this.state.nextSeq(),
      time: new Date().toISOString(),
      provider: "sendgrid",
      to,
      providerMessageId: messageId,
      status: event,
      url,
      headers: {
        "content-type": "application/json",
        "x-twilio-email-event-webhook-signature": signature,
        "x-twilio-email-event-webhook-timestamp": timestamp,
        "user-agent": "SendGrid Event API",
      },
      body,
      mode,
      delivered: false,
    };
  }
}
