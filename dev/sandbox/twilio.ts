// The Twilio half of the provider sandbox: Messages create, list and fetch under
// /2010-04-01/Accounts/{AccountSid}/, with Twilio's paths, form fields, JSON shapes and error bodies,
// so that src/providers/twilio.ts runs unchanged against it; plus signed status callbacks.
//
// A message lives as Twilio documents it (twilio-oai spec/json/twilio_api_v2010.json, schema
// api.v2010.account.message): created `queued` (`accepted` through a Messaging Service) with
// `date_sent`, `price` and `price_unit` null; later sent (`sending` → `sent`, `date_sent` and the
// price set); only then do its sent/delivered callbacks go out. How long it stays queued is the
// recipient's `holdMs` (or `hold` until released).
import type http from "node:http";
import { createHmac } from "node:crypto";
import { smsSegments } from "../../src/validation/segments.ts";
import {
  arrange,
  deliverInOrder,
  hex,
  sendJson,
  type CallbackRecord,
  type CallbackSpec,
  type ForeignMessageSpec,
  type SandboxState,
} from "./shared.ts";

export interface TwilioCredentials {
  accountSid: string;
  authToken: string;
  /** API Key SID → secret, the alternative REST credentials */
  apiKeys?: Record<string, string>;
}

/** A stored Message resource, exactly as Twilio's JSON names it. */
export type TwilioMessage = Record<string, unknown> & { sid: string; to: string; from: string | null; status: string; date_sent: string | null };

/** What the sandbox knows of a message beyond Twilio's JSON. */
interface MessageMeta {
  /** creation order, the last tie-breaker of the list order */
  seq: number;
  createdMs: number;
  /** our message id, from the StatusCallback URL */
  messageId: string | null;
  /** inserted through the control API, never created through Messages create */
  foreign: boolean;
  statusCallback: string | null;
  spec: CallbackSpec;
  statuses: string[];
  /** still queued: waiting for its hold to end (held = until released) */
  queued: boolean;
  held: boolean;
  timer?: NodeJS.Timeout;
}

export interface ListAnswer {
  status: number;
  body: unknown;
}

const API_VERSION = "2010-04-01";
/** A number of the sandbox's "Messaging Service" pool, assigned when a service message is processed. */
const POOL_NUMBER = "+15005550006";
/** US SMS price per segment, as a Twilio list shows it once the message is sent. */
const PRICE_PER_SEGMENT = 0.0079;
/** Twilio's cap on Body (error 21617). */
const MAX_BODY_CHARS = 1600;
/** Statuses a message passes through before Twilio sends it; their callbacks go out at once. */
const BEFORE_SENDING = new Set(["accepted", "queued", "scheduled"]);
/** Statuses that mean the message left Twilio, so it has a date_sent. */
const LEFT_TWILIO = new Set(["sent", "delivered", "undelivered", "read"]);

const ERROR_MESSAGES: Record<number, string> = {
  20001: "Invalid parameter",
  20003: "Authenticate",
  20404: "The requested resource was not found",
  20429: "Too Many Requests",
  20500: "An internal server error has occurred",
  20503: "Service is unavailable. Please try again",
  21211: "Invalid 'To' Phone Number",
  21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
  21602: "Message body is required.",
  21603: "A 'From' phone number is required.",
  21604: "A 'To' phone number is required.",
  21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account",
  21610: "Attempt to send to unsubscribed recipient",
  21614: "'To' number is not a valid mobile number",
  21617: "The concatenated message body exceeds the 1600 character limit",
};
const DELIVERY_ERRORS: Record<number, string> = {
  30003: "Unreachable destination handset",
  30005: "Unknown destination handset",
  30006: "Landline or unreachable carrier",
  30007: "Message filtered",
  30008: "Unknown error",
};
const STATUS_CODE: Record<number, number> = { 400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503 };

/** RFC 2822 in GMT, as Twilio writes dates: "Thu, 30 Jul 2015 20:12:31 +0000". */
export const rfc2822 = (d: Date) => d.toUTCString().replace("GMT", "+0000");

/** Twilio's request signature: base64 HMAC-SHA1 over the URL and the sorted name+value pairs. */
export function twilioSignature(authToken: string, url: string, params: Iterable<[string, string]>): string {
  const pairs = [...params].sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return createHmac("sha1", authToken).update(url + pairs.map(([n, v]) => n + v).join(""), "utf8").digest("base64");
}

export function twilioErrorBody(status: number, code: number | string | undefined, message?: string): Record<string, unknown> {
  const numeric = code === undefined ? (STATUS_CODE[status] ?? status * 100) : Number(code);
  return { code: numeric, message: message ?? ERROR_MESSAGES[numeric] ?? `Error ${numeric}`, more_info: `https://www.twilio.com/docs/errors/${numeric}`, status };
}

export function twilioError(res: http.ServerResponse, status: number, code: number | string | undefined, message?: string, headers: Record<string, string> = {}): void {
  // Twilio's 401s carry the Basic challenge, as any HTTP Basic endpoint's do.
  const challenge: Record<string, string> = status === 401 ? { "www-authenticate": 'Basic realm="Twilio API"' } : {};
  sendJson(res, status, twilioErrorBody(status, code, message), { ...challenge, ...headers });
}

/** Our message id as the service puts it in the StatusCallback URL (`?message_id=`). */
export function messageIdFromCallbackUrl(url: unknown): string | null {
  if (typeof url !== "string") return null;
  try {
    return new URL(url).searchParams.get("message_id");
  } catch {
    return null;
  }
}

export class TwilioSandbox {
  readonly messages = new Map<string, TwilioMessage>();
  private readonly meta = new Map<string, MessageMeta>();
  private seq = 0;

  constructor(
    private readonly state: SandboxState,
    readonly credentials: TwilioCredentials,
    private readonly defaultCallbacks: CallbackSpec,
  ) {}

  /** Basic auth as Twilio checks it: Account SID + Auth Token, or an API Key SID + secret. */
  authorized(req: http.IncomingMessage, pathAccount: string): boolean {
    if (this.state.credentials.twilio === "revoked") return false;
    const header = req.headers.authorization ?? "";
    if (!header.startsWith("Basic ")) return false;
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    if (pathAccount !== this.credentials.accountSid) return false;
    if (user === this.credentials.accountSid) return pass === this.credentials.authToken;
    return this.credentials.apiKeys?.[user] !== undefined && this.credentials.apiKeys[user] === pass;
  }

  /** Checks the fields Twilio requires; returns the error code, or null. */
  validate(form: Record<string, string | string[]>): number | null {
    const first = (name: string) => {
      const v = form[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const to = first("To");
    if (!to) return 21604;
    // E.164, optionally behind a channel prefix (whatsapp:+1555...).
    if (!/^(?:[a-z]+:)?\+[1-9]\d{1,14}$/.test(to)) return 21211;
    if (!first("From") && !first("MessagingServiceSid")) return 21603;
    if (!first("Body") && form.MediaUrl === undefined) return 21602;
    if ((first("Body") ?? "").length > MAX_BODY_CHARS) return 21617;
    return null;
  }

  /**
   * Stores an accepted message as Twilio answers it: queued (accepted through a Messaging
   * Service), no date_sent, no price. Returns the create answer and `begin`, which the caller
   * runs once the answer is written (or withheld): it moves the message on and, after the
   * recipient's hold, sends it.
   */
  accept(form: Record<string, string | string[]>, callbacks: CallbackSpec | undefined): { answer: TwilioMessage; begin: () => void } {
    const str = (name: string) => (Array.isArray(form[name]) ? (form[name] as string[])[0] : (form[name] as string | undefined)) ?? null;
    const media = form.MediaUrl === undefined ? [] : ([] as string[]).concat(form.MediaUrl);
    const sid = `${media.length > 0 ? "MM" : "SM"}${hex(16)}`;
    const now = new Date();
    const serviceSid = str("MessagingServiceSid");
    const body = str("Body") ?? "";
    const message: TwilioMessage = {
      account_sid: this.credentials.accountSid,
      api_version: API_VERSION,
      body,
      date_created: rfc2822(now),
      date_sent: null,
      date_updated: rfc2822(now),
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: str("From"),
      messaging_service_sid: serviceSid,
      num_media: String(media.length),
      // A Messaging Service picks the sender later, so Twilio cannot count segments yet.
      num_segments: serviceSid ? "0" : String(Math.max(1, smsSegments(body))),
      price: null,
      price_unit: null,
      sid,
      status: serviceSid ? "accepted" : "queued",
      subresource_uris: { media: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}/Media.json` },
      to: str("To")!,
      uri: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}.json`,
    };
    const spec = { ...this.defaultCallbacks, ...callbacks };
    const statusCallback = str("StatusCallback");
    this.messages.set(sid, message);
    this.meta.set(sid, {
      seq: ++this.seq,
      createdMs: now.getTime(),
      messageId: messageIdFromCallbackUrl(statusCallback),
      foreign: false,
      statusCallback,
      spec,
      statuses: spec.statuses ?? (serviceSid ? ["queued", "sent", "delivered"] : ["sent", "delivered"]),
      queued: true,
      held: false,
    });
    return { answer: { ...message }, begin: () => this.begin(sid) };
  }

  /** Queues the message (a service's moves from accepted to queued), then sends it after its hold. */
  private begin(sid: string): void {
    const message = this.messages.get(sid);
    const meta = this.meta.get(sid);
    if (!message || !meta) return;
    if (message.status === "accepted") {
      this.update(message, { status: "queued", from: message.from ?? POOL_NUMBER });
    }
    this.produceCallbacks(message, meta, meta.statuses.filter((s) => BEFORE_SENDING.has(s)));
    if (meta.spec.hold) {
      meta.held = true;
      return;
    }
    const holdMs = Math.max(0, Number(meta.spec.holdMs ?? 0) || 0);
    if (holdMs === 0) return this.send(sid);
    // unref: a message still on hold must not keep a finished test run's process alive
    meta.timer = setTimeout(() => this.send(sid), holdMs).unref();
  }

  /** Twilio sends the message: sending → sent (date_sent, price), then its later statuses and callbacks. */
  private send(sid: string): void {
    const message = this.messages.get(sid);
    const meta = this.meta.get(sid);
    if (!message || !meta || !meta.queued) return;
    meta.queued = false;
    meta.held = false;
    clearTimeout(meta.timer);
    this.update(message, { status: "sending", from: message.from ?? POOL_NUMBER });
    const after = meta.statuses.filter((s) => !BEFORE_SENDING.has(s) && s !== "sending");
    const final = after.at(-1) ?? "sent";
    const leftTwilio = after.length === 0 || after.some((s) => LEFT_TWILIO.has(s));
    const segments = Math.max(1, smsSegments(String(message.body ?? "")));
    const errorCode = final === "failed" || final === "undelivered" ? Number(meta.spec.errorCode ?? 30003) : null;
    const now = new Date();
    this.update(message, {
      status: final,
      date_sent: leftTwilio ? rfc2822(now) : null,
      num_segments: String(segments),
      price: leftTwilio ? (-PRICE_PER_SEGMENT * segments).toFixed(5) : null,
      price_unit: "USD",
      error_code: errorCode,
      error_message: errorCode === null ? null : (DELIVERY_ERRORS[errorCode] ?? "Unknown error"),
    });
    this.produceCallbacks(message, meta, after);
  }

  private update(message: TwilioMessage, fields: Partial<TwilioMessage>): void {
    Object.assign(message, fields, { date_updated: rfc2822(new Date()) });
  }

  /** Sends the held messages to `to` (all held messages without it); returns their sids. */
  release(to?: string): string[] {
    const released: string[] = [];
    for (const [sid, meta] of this.meta) {
      if (!meta.held || (to !== undefined && this.messages.get(sid)?.to !== to)) continue;
      released.push(sid);
      this.send(sid);
    }
    return released;
  }

  /** A message another system on the same account sent: listed and fetchable, never ours. */
  insertForeign(spec: ForeignMessageSpec): TwilioMessage {
    if (typeof spec.to !== "string" || typeof spec.from !== "string" || typeof spec.body !== "string") {
      throw new Error("to, from and body are required strings");
    }
    const created = spec.date_created === undefined ? new Date() : parseDate(spec.date_created, "date_created");
    const sent = spec.date_sent === undefined ? created : spec.date_sent === null ? null : parseDate(spec.date_sent, "date_sent");
    const numMedia = spec.num_media ?? 0;
    const sid = `${numMedia > 0 ? "MM" : "SM"}${hex(16)}`;
    const segments = Math.max(1, smsSegments(spec.body));
    const message: TwilioMessage = {
      account_sid: this.credentials.accountSid,
      api_version: API_VERSION,
      body: spec.body,
      date_created: rfc2822(created),
      date_sent: sent === null ? null : rfc2822(sent),
      date_updated: rfc2822(sent ?? created),
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: spec.from,
      messaging_service_sid: spec.messaging_service_sid ?? null,
      num_media: String(numMedia),
      num_segments: String(segments),
      price: sent === null ? null : (-PRICE_PER_SEGMENT * segments).toFixed(5),
      price_unit: sent === null ? null : "USD",
      sid,
      status: spec.status ?? (sent === null ? "queued" : "delivered"),
      subresource_uris: { media: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}/Media.json` },
      to: spec.to,
      uri: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}.json`,
    };
    this.messages.set(sid, message);
    this.meta.set(sid, {
      seq: ++this.seq,
      createdMs: created.getTime(),
      messageId: null,
      foreign: true,
      statusCallback: null,
      spec: {},
      statuses: [],
      queued: false,
      held: false,
    });
    return { ...message };
  }

  /** Our message id and whether the message is foreign or held, for the control API. */
  describe(sid: string): { messageId: string | null; foreign: boolean; held: boolean } {
    const meta = this.meta.get(sid);
    return { messageId: meta?.messageId ?? null, foreign: meta?.foreign ?? false, held: meta?.held ?? false };
  }

  clear(): void {
    for (const meta of this.meta.values()) clearTimeout(meta.timer);
    this.messages.clear();
    this.meta.clear();
  }

  private produceCallbacks(message: TwilioMessage, meta: MessageMeta, statuses: string[]): void {
    const mode = meta.spec.mode ?? "hold";
    if (mode === "off" || meta.statusCallback === null || statuses.length === 0) return;
    const url = meta.statusCallback;
    const records = statuses.map((status): CallbackRecord => {
      // The fields Twilio posts to a StatusCallback URL for an outbound message.
      const params: [string, string][] = [
        ["AccountSid", this.credentials.accountSid],
        ["ApiVersion", API_VERSION],
        ["From", String(message.from)],
        ["MessageSid", message.sid],
        ["MessageStatus", status],
        ["SmsSid", message.sid],
        ["SmsStatus", status],
        ["To", message.to],
      ];
      if (message.messaging_service_sid) params.push(["MessagingServiceSid", String(message.messaging_service_sid)]);
      if (status === "undelivered" || status === "failed") params.push(["ErrorCode", meta.spec.errorCode ?? "30003"]);
      if (status === "delivered" || status === "undelivered") params.push(["RawDlrDoneDate", rawDlrDoneDate(new Date())]);
      return {
        seq: this.state.nextSeq(),
        time: new Date().toISOString(),
        provider: "twilio",
        to: message.to,
        providerMessageId: message.sid,
        status,
        url,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": twilioSignature(this.credentials.authToken, url, params),
          "user-agent": "TwilioProxy/1.1",
        },
        body: new URLSearchParams(params).toString(),
        mode,
        delivered: false,
      };
    });
    const ordered = arrange(records, meta.spec).map((r, i, all) => (all.indexOf(r) === i ? r : { ...r, seq: this.state.nextSeq() }));
    this.state.callbacks.push(...ordered);
    if (mode === "post") void deliverInOrder(ordered, meta.spec.delayMs ?? 100);
  }

  /**
   * GET Messages.json as Twilio documents it: filters To, From, DateSent, DateSent< and DateSent>
   * (on date_sent: a message without one never matches a DateSent filter), PageSize 1..1000
   * (default 50), and paging by PageToken (`PA<sid>` = the page after that message, `PB<sid>` =
   * the page before it, as in Twilio's next_page_uri) or by Page alone.
   *
   * Order: Twilio documents the list as sorted by date_sent, most recent first (Message resource,
   * "Read multiple Message resources": "Results are sorted by the DateSent field, with the most
   * recent messages appearing first"). Where a message still queued, without a date_sent, goes is
   * not documented (neither the docs nor twilio-oai say). The sandbox puts such messages after
   * every sent one, newest created first: the place least kind to a client that reads the first
   * page only. Ties on date_sent (whole seconds) go by creation, newest first.
   */
  list(accountPath: string, query: URLSearchParams): ListAnswer {
    const invalid = (name: string) => ({ status: 400, body: twilioErrorBody(400, 20001, `Invalid ${name}`) });
    const pageSizeText = query.get("PageSize");
    const pageSize = pageSizeText === null ? 50 : Number(pageSizeText);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) return invalid("PageSize");
    const page = query.get("Page") === null ? 0 : Number(query.get("Page"));
    if (!Number.isInteger(page) || page < 0) return invalid("Page");
    const bounds: { name: string; value: string | null }[] = ["DateSent", "DateSent<", "DateSent>"].map((name) => ({ name, value: query.get(name) }));
    const ranges: [number, number][] = [];
    for (const { name, value } of bounds) {
      if (value === null) continue;
      const range = dateRange(value);
      if (range === null) return invalid(name);
      // `DateSent>` is "on and after", `DateSent<` "on and before" (a day counts whole).
      ranges.push(name === "DateSent" ? range : name === "DateSent>" ? [range[0], Infinity] : [-Infinity, range[1]]);
    }
    const to = query.get("To");
    const from = query.get("From");
    const ordered = [...this.messages.values()]
      .filter((m) => (to === null || m.to === to) && (from === null || m.from === from))
      .filter((m) => {
        if (ranges.length === 0) return true;
        if (m.date_sent === null) return false;
        const sent = Date.parse(m.date_sent);
        return ranges.every(([lo, hi]) => sent >= lo && sent <= hi);
      })
      .sort((a, b) => this.compare(a, b));

    let slice: TwilioMessage[];
    const token = query.get("PageToken");
    if (token !== null) {
      const cursor = /^P([AB])((?:SM|MM)[0-9a-f]{32})$/.exec(token);
      const anchor = cursor ? this.messages.get(cursor[2]!) : undefined;
      if (!cursor || !anchor) return invalid("PageToken");
      if (cursor[1] === "A") slice = ordered.filter((m) => this.compare(m, anchor) > 0).slice(0, pageSize);
      else slice = ordered.filter((m) => this.compare(m, anchor) < 0).slice(-pageSize);
    } else {
      slice = ordered.slice(page * pageSize, (page + 1) * pageSize);
    }
    const first = slice[0];
    const last = slice.at(-1);
    const more = last !== undefined && ordered.some((m) => this.compare(m, last) > 0);
    const earlier = first !== undefined && ordered.some((m) => this.compare(m, first) < 0);

    const filters = new URLSearchParams();
    for (const [name, value] of query) if (name !== "PageSize" && name !== "Page" && name !== "PageToken") filters.append(name, value);
    const pageUri = (p: number, pageToken?: string | null) => {
      const q = new URLSearchParams(filters);
      q.set("PageSize", String(pageSize));
      q.set("Page", String(p));
      if (pageToken) q.set("PageToken", pageToken);
      return `${accountPath}/Messages.json?${q.toString()}`;
    };
    const start = page * pageSize;
    return {
      status: 200,
      body: {
        end: start + Math.max(0, slice.length - 1),
        first_page_uri: pageUri(0),
        messages: slice.map((m) => ({ ...m })),
        next_page_uri: more ? pageUri(page + 1, `PA${last!.sid}`) : null,
        page,
        page_size: pageSize,
        previous_page_uri: page > 0 && earlier ? pageUri(page - 1, `PB${first!.sid}`) : null,
        start,
        uri: pageUri(page, token),
      },
    };
  }

  /** The list order: sent messages by date_sent, newest first, then the unsent ones; <0 = a comes first. */
  private compare(a: TwilioMessage, b: TwilioMessage): number {
    const sentA = a.date_sent === null ? null : Date.parse(a.date_sent);
    const sentB = b.date_sent === null ? null : Date.parse(b.date_sent);
    if (sentA !== sentB) {
      if (sentA === null) return 1;
      if (sentB === null) return -1;
      return sentB - sentA;
    }
    const metaA = this.meta.get(a.sid)!;
    const metaB = this.meta.get(b.sid)!;
    return metaB.createdMs - metaA.createdMs || metaB.seq - metaA.seq;
  }
}

/** A DateSent value as a [from, to] range in ms: a YYYY-MM-DD date is the whole UTC day, a timestamp itself; null if unreadable. */
function dateRange(value: string): [number, number] | null {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = Date.parse(`${value}T00:00:00Z`);
    return Number.isNaN(start) ? null : [start, start + 86_400_000 - 1];
  }
  // Twilio's own examples also use "2019-06-11 22:05:25.000" and RFC 2822 timestamps.
  const t = Date.parse(/^\d{4}-\d{2}-\d{2} \d/.test(value) ? `${value.replace(" ", "T")}Z` : value);
  return Number.isNaN(t) ? null : [t, t];
}

function parseDate(value: string, name: string): Date {
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`${name} is not a date`);
  return new Date(t);
}

/** The carrier's done date as Twilio passes it through: YYMMDDhhmm. */
function rawDlrDoneDate(d: Date): string {
  const iso = d.toISOString();
  return iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16);
}
