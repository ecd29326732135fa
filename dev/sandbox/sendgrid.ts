// The SendGrid half of the provider sandbox: POST /v3/mail/send validated as strictly as SendGrid
// does (every refusal a 400 with SendGrid's {"errors": [{message, field, help}]}),
// 202 + X-Message-Id on success, and Event Webhook batches signed with ECDSA P-256 the way
// SendGrid signs them (DER signature over timestamp + body), so that the service's verifier
// (docs/api.md) can be exercised with the sandbox's public key.
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
  type MailAddress,
  type SandboxState,
  type SentMail,
} from "./shared.ts";

/**
 * SendGrid posts events again when the endpoint does not answer 2xx; its own schedule is longer.
 * These keep a local run short while still letting a service that was down catch up.
 */
const EVENT_RETRY_DELAYS_MS = [2000, 4000, 8000, 16000, 30000];

/** SendGrid's cap on one mail/send request, attachments included. */
const MAX_MESSAGE_BYTES = 30 * 1024 * 1024;
/** Mail Send's limits: personalizations, recipients (to + cc + bcc) and reply_to_list entries per request. */
const MAX_PERSONALIZATIONS = 1000;
const MAX_RECIPIENTS = 1000;
const MAX_REPLY_TO_LIST = 1000;
/** custom_args may not exceed 10,000 bytes (Mail Send schema). */
const MAX_CUSTOM_ARGS_BYTES = 10_000;
const HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html";

/** One entry of SendGrid's `{"errors": [...]}`. */
export interface SendGridErrorItem {
  message: string;
  field: string | null;
  help: string | null;
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

/** SendGrid's answer to a key without the mail.send scope: no help member, as SendGrid sends it. */
export function sendgridForbidden(res: http.ServerResponse): void {
  sendJson(res, 403, { errors: [{ field: null, message: "access forbidden" }] });
}

/** SendGrid's rate-limit headers: the reset time is a unix timestamp, not a delay. */
export function sendgridRateLimitHeaders(retryAfterSeconds: number): Record<string, string> {
  return {
    "x-ratelimit-limit": "600",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + retryAfterSeconds),
  };
}

/** A plausible address: one @, no spaces or brackets, a dot in the domain. */
const EMAIL = /^[^\s@<>()[\],;:"]+@[^\s@<>()[\],;:"]+\.[^\s@<>()[\],;:".]+$/;
// Linear: a regex of repeated groups overflows V8's stack on a 10 MB attachment's 14 MB of base64.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64 = { test: (s: string) => s.length % 4 === 0 && BASE64_CHARS.test(s) };

const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/**
 * Mail Send's checks on the request body (sendgrid-oai spec/paths/mail_send/mail_send.json and
 * SendGrid's "Mail Send errors" page), in SendGrid's words, every refusal found: [] when the mail
 * is acceptable. The error messages are SendGrid's where its docs give them.
 */
export function validateMail(body: unknown): SendGridErrorItem[] {
  const errors: SendGridErrorItem[] = [];
  const fail = (field: string | null, message: string, anchor = field ?? "") => errors.push({ message, field, help: `${HELP}#message.${anchor}` });
  if (!isObject(body)) {
    fail(null, "Bad Request", "body");
    return errors;
  }
  const mail = body;
  const template = nonEmptyString(mail.template_id);

  /** An email object {email, name?}; false (and an error) when it is not one. */
  const address = (value: unknown, field: string, what: string): value is { email: string; name?: string } => {
    if (!isObject(value) || typeof value.email !== "string") {
      fail(field, `The ${what} object must at least have an email parameter with a valid email address and may also contain a name parameter.`);
      return false;
    }
    if (!EMAIL.test(value.email)) {
      fail(`${field}.email`, "Does not contain a valid address.");
      return false;
    }
    if (value.name !== undefined && typeof value.name !== "string") {
      fail(`${field}.name`, `The ${what} name must be a string.`);
      return false;
    }
    return true;
  };

  const personalizations = mail.personalizations;
  let everyHasSubject = false;
  if (!Array.isArray(personalizations) || personalizations.length === 0) {
    fail("personalizations", "The personalizations field is required and must have at least one personalization.");
  } else if (personalizations.length > MAX_PERSONALIZATIONS) {
    fail(
      "personalizations",
      `The personalization block is limited to ${MAX_PERSONALIZATIONS} personalizations per API request. You have provided ${personalizations.length} personalizations. Please consider splitting this into multiple requests and resending your request.`,
    );
  } else {
    let recipients = 0;
    everyHasSubject = true;
    for (const [i, p] of personalizations.entries()) {
      const at = `personalizations.${i}`;
      if (!isObject(p)) {
        fail(at, "Each personalization must be an object.");
        everyHasSubject = false;
        continue;
      }
      if (!Array.isArray(p.to) || p.to.length === 0) {
        fail(`${at}.to`, "The to array is required for all personalization objects, and must have at least one email object with a valid email address.");
      }
      const seen = new Map<string, string>();
      for (const kind of ["to", "cc", "bcc"] as const) {
        const list = p[kind];
        if (list === undefined || (kind === "to" && (!Array.isArray(list) || list.length === 0))) continue;
        if (!Array.isArray(list) || list.length === 0) {
          fail(
            `${at}.${kind}`,
            `The ${kind} array, when used, must at least have an email parameter with a valid email address and it may also contain a name parameter. e.g. {"email" : "example@example.com"} or {"email" : "example@example.com", "name" : "Example Recipient"}`,
          );
          continue;
        }
        recipients += list.length;
        for (const [j, entry] of list.entries()) {
          if (!address(entry, `${at}.${kind}.${j}`, kind)) continue;
          const key = entry.email.toLowerCase();
          if (seen.has(key)) {
            fail(
              at,
              `Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [${entry.email}] in the ${at}.${kind} field.`,
            );
          } else seen.set(key, kind);
        }
      }
      if (p.subject === undefined) everyHasSubject = false;
      else if (!nonEmptyString(p.subject)) {
        everyHasSubject = false;
        fail(`${at}.subject`, "The subject must be a string at least one character in length.");
      }
      customArgs(p.custom_args, `${at}.custom_args`, fail);
      if (p.from !== undefined) address(p.from, `${at}.from`, "from");
    }
    if (recipients > MAX_RECIPIENTS) fail("personalizations", `There is a limit of ${MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.`);
  }

  if (mail.from === undefined || mail.from === null) {
    fail("from", "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.");
  } else if (isObject(mail.from) && typeof mail.from.email === "string" && !EMAIL.test(mail.from.email)) {
    fail("from.email", "The from email does not contain a valid address.");
  } else address(mail.from, "from", "from");

  if (mail.reply_to !== undefined && mail.reply_to_list !== undefined) {
    fail("reply_to_list", "The reply_to is mutually exclusive with reply_to_list.");
  } else if (mail.reply_to !== undefined) {
    if (isObject(mail.reply_to) && typeof mail.reply_to.email === "string" && !EMAIL.test(mail.reply_to.email)) {
      fail("reply_to.email", "The reply_to email does not contain a valid address.");
    } else address(mail.reply_to, "reply_to", "reply_to");
  } else if (mail.reply_to_list !== undefined) {
    const list = mail.reply_to_list;
    if (!Array.isArray(list) || list.length === 0) {
      fail("reply_to_list", "The reply_to_list object, when used, must at least have an email parameter and may also contain a name parameter.");
    } else if (list.length > MAX_REPLY_TO_LIST) {
      fail("reply_to_list", `There is a limit of ${MAX_REPLY_TO_LIST} reply_to emails per mail/send request.`);
    } else {
      const seen = new Set<string>();
      for (const [i, entry] of list.entries()) {
        if (!isObject(entry) || entry.email === undefined) fail(`reply_to_list.${i}.email`, "The reply_to_list email parameter is required.");
        else if (typeof entry.email !== "string" || !EMAIL.test(entry.email)) fail(`reply_to_list.${i}.email`, "The reply_to_list email does not contain a valid address.");
        else if (seen.has(entry.email.toLowerCase())) fail("reply_to_list", "Each email address in the reply_to_list should be unique.");
        else seen.add(entry.email.toLowerCase());
      }
    }
  }

  if (mail.subject !== undefined && !nonEmptyString(mail.subject)) {
    fail("subject", "The subject must be a string at least one character in length.");
  } else if (mail.subject === undefined && !everyHasSubject && !template) {
    fail("subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.");
  }

  const content = mail.content;
  if (content === undefined && !template) {
    fail(
      "content",
      "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.",
    );
  } else if (content !== undefined) {
    if (!Array.isArray(content) || content.length === 0) {
      fail("content", "The content parameter must be an array with at least one content block.");
    } else {
      const types: string[] = [];
      for (const [i, block] of content.entries()) {
        if (!isObject(block) || !nonEmptyString(block.type)) {
          fail(`content.${i}.type`, "The content type must be a string at least one character in length.");
          continue;
        }
        if (/[;\r\n]/.test(block.type)) fail(`content.${i}.type`, "The content type cannot contain ';', or CRLF characters.");
        if (!nonEmptyString(block.value)) fail(`content.${i}.value`, "The content value must be a string at least one character in length.");
        types.push(block.type.toLowerCase());
      }
      const plain = types.indexOf("text/plain");
      const html = types.indexOf("text/html");
      if (types.filter((t) => t === "text/plain").length > 1 || types.filter((t) => t === "text/html").length > 1) {
        fail("content", "If present, text/plain and text/html may only be provided once.");
      } else if ((plain > 0) || (html >= 0 && html !== (plain === 0 ? 1 : 0))) {
        fail("content", "If present, text/plain content must be first, followed by text/html, followed by any other content.");
      }
    }
  }

  if (mail.attachments !== undefined) {
    if (!Array.isArray(mail.attachments)) fail("attachments", "The attachments parameter must be an array.");
    else {
      for (const [i, a] of mail.attachments.entries()) {
        const at = `attachments.${i}`;
        if (!isObject(a) || !nonEmptyString(a.content)) fail(`${at}.content`, "The attachment content is required.");
        else if (!BASE64.test(a.content)) fail(`${at}.content`, "The attachment content must be base64 encoded.");
        if (!isObject(a) || !nonEmptyString(a.filename)) fail(`${at}.filename`, "The attachment filename parameter is required.");
        if (!isObject(a)) continue;
        if (a.type !== undefined && (!nonEmptyString(a.type) || /[;\r\n]/.test(a.type))) {
          fail(`${at}.type`, "The attachment type must be a string at least one character in length, and cannot contain ';', or CRLF characters.");
        }
        if (a.disposition !== undefined && a.disposition !== "inline" && a.disposition !== "attachment") {
          fail(`${at}.disposition`, 'The disposition of your attachment can be either "inline" or "attachment".');
        }
        if (a.content_id !== undefined && !nonEmptyString(a.content_id)) fail(`${at}.content_id`, "The content_id must be a string at least one character in length.");
        else if (a.disposition === "inline" && a.content_id === undefined) {
          fail(`${at}.content_id`, 'The content_id parameter is required if your attachment disposition is "inline".');
        }
      }
    }
  }

  customArgs(mail.custom_args, "custom_args", fail);
  return errors;
}

/** custom_args: an object of string values, at most 10,000 bytes. */
function customArgs(value: unknown, field: string, fail: (field: string, message: string) => void): void {
  if (value === undefined) return;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    fail(field, "Custom args must be an object whose values are strings.");
  } else if (Buffer.byteLength(JSON.stringify(value)) > MAX_CUSTOM_ARGS_BYTES) {
    fail(field, `The custom_args may not exceed ${MAX_CUSTOM_ARGS_BYTES} bytes.`);
  }
}

/** What the recipients of an accepted mail see, from its (valid) request body. */
export function parseMail(body: Record<string, any>, sgMessageId: string, time: string): SentMail {
  const addr = (a: any): MailAddress => (a.name === undefined ? { email: a.email } : { email: a.email, name: a.name });
  const list = (v: unknown): MailAddress[] => (Array.isArray(v) ? v.map(addr) : []);
  const personalizations = (body.personalizations as any[]).map((p) => ({
    to: list(p.to),
    cc: list(p.cc),
    bcc: list(p.bcc),
    subject: typeof p.subject === "string" ? p.subject : typeof body.subject === "string" ? body.subject : null,
    customArgs: { ...(body.custom_args ?? {}), ...(p.custom_args ?? {}) } as Record<string, string>,
  }));
  const content = (type: string) => ((body.content ?? []) as any[]).find((c) => String(c.type).toLowerCase() === type)?.value ?? null;
  const ours = personalizations[0]?.customArgs.message_id;
  return {
    sgMessageId,
    messageId: typeof ours === "string" ? ours : null,
    time,
    from: addr(body.from),
    replyTo: body.reply_to === undefined ? null : addr(body.reply_to),
    replyToList: list(body.reply_to_list),
    personalizations,
    subject: typeof body.subject === "string" ? body.subject : null,
    text: content("text/plain"),
    html: content("text/html"),
    attachments: ((body.attachments ?? []) as any[]).map((a) => ({
      filename: a.filename,
      type: a.type ?? null,
      disposition: a.disposition ?? "attachment",
      contentId: a.content_id ?? null,
      bytes: Buffer.from(a.content, "base64").length,
    })),
    customArgs: { ...(body.custom_args ?? {}) },
    recipients: personalizations.flatMap((p) => [...p.to, ...p.cc, ...p.bcc].map((a) => a.email.toLowerCase())),
    request: body,
  };
}

export class SendGridSandbox {
  /** accepted mails by X-Message-Id */
  readonly mails = new Map<string, SentMail>();
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

  /** Bearer auth with the key; null when it passes, else why not (the key revoked, or without mail.send). */
  refusal(req: http.IncomingMessage): "revoked" | "forbidden" | null {
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return "revoked";
    return this.state.credentials.sendgrid === "valid" ? null : this.state.credentials.sendgrid;
  }

  /** The request size cap (413) first, then every Mail Send rule (400); null when the mail is acceptable. */
  validate(body: unknown, bytes: number): { status: number; errors: SendGridErrorItem[] } | null {
    if (bytes > MAX_MESSAGE_BYTES) return { status: 413, errors: [{ message: STATUS_MESSAGES[413]!, field: null, help: null }] };
    const errors = validateMail(body);
    return errors.length === 0 ? null : { status: 400, errors };
  }

  /** Stores an accepted mail under a fresh X-Message-Id and starts (or holds) its events. */
  accept(body: Record<string, any>, callbacks: CallbackSpec | undefined): string {
    const sgMessageId = alphanumeric(22);
    this.mails.set(sgMessageId, parseMail(body, sgMessageId, new Date().toISOString()));
    const spec = { ...this.defaultCallbacks, ...callbacks };
    const url = spec.url ?? this.eventsUrl;
    if (url && spec.mode !== "off") this.scheduleEvents(sgMessageId, body, url, spec);
    return sgMessageId;
  }

  private scheduleEvents(messageId: string, body: Record<string, any>, url: string, spec: CallbackSpec): void {
    const mode = spec.mode ?? "hold";
    if (mode === "off") return;
    const statuses = spec.statuses ?? ["processed", "delivered"];
    const sgMessageId = `${messageId}.filterdrecv-sandbox-1-${hex(4).toUpperCase()}-0.0`;
    const records: CallbackRecord[] = [];
    // SendGrid reports on every recipient of a personalization, its cc and bcc as well.
    for (const personalization of body.personalizations as any[]) {
      for (const recipient of [...personalization.to, ...(personalization.cc ?? []), ...(personalization.bcc ?? [])]) {
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
