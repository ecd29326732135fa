// The Twilio half of the provider sandbox: Messages create, list and fetch under
// /2010-04-01/Accounts/{AccountSid}/, with Twilio's paths, form fields, JSON shapes and error bodies,
// so that src/providers/twilio.ts runs unchanged against it; plus signed status callbacks.
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

const API_VERSION = "2010-04-01";
const ERROR_MESSAGES: Record<number, string> = {
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
};
const STATUS_CODE: Record<number, number> = { 400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503 };

/** RFC 2822 in GMT, as Twilio writes dates: "Thu, 30 Jul 2015 20:12:31 +0000". */
export const rfc2822 = (d: Date) => d.toUTCString().replace("GMT", "+0000");

/** Twilio's request signature: base64 HMAC-SHA1 over the URL and the sorted name+value pairs. */
export function twilioSignature(authToken: string, url: string, params: Iterable<[string, string]>): string {
  const pairs = [...params].sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return createHmac("sha1", authToken).update(url + pairs.map(([n, v]) => n + v).join(""), "utf8").digest("base64");
}

export function twilioError(res: http.ServerResponse, status: number, code: number | string | undefined, message?: string, headers: Record<string, string> = {}): void {
  const numeric = code === undefined ? (STATUS_CODE[status] ?? status * 100) : Number(code);
  sendJson(
    res,
    status,
    { code: numeric, message: message ?? ERROR_MESSAGES[numeric] ?? `Error ${numeric}`, more_info: `https://www.twilio.com/docs/errors/${numeric}`, status },
    headers,
  );
}

export class TwilioSandbox {
  readonly messages = new Map<string, TwilioMessage>();

  constructor(
    private readonly state: SandboxState,
    readonly credentials: TwilioCredentials,
    private readonly defaultCallbacks: CallbackSpec,
  ) {}

  /** Basic auth as Twilio checks it: Account SID + Auth Token, or an API Key SID + secret. */
  authorized(req: http.IncomingMessage, pathAccount: string): boolean {
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
    if (!first("To")) return 21604;
    if (!first("From") && !first("MessagingServiceSid")) return 21603;
    if (!first("Body") && form.MediaUrl === undefined) return 21602;
    return null;
  }

  /** Stores an accepted message as Twilio would, and starts (or holds) its status callbacks. */
  accept(form: Record<string, string | string[]>, callbacks: CallbackSpec | undefined): TwilioMessage {
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
      num_segments: serviceSid ? "0" : String(Math.max(1, smsSegments(body))),
      price: null,
      price_unit: "USD",
      sid,
      // Messages created through a Messaging Service start `accepted`, others `queued`.
      status: serviceSid ? "accepted" : "queued",
      subresource_uris: { media: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}/Media.json` },
      to: str("To")!,
      uri: `/${API_VERSION}/Accounts/${this.credentials.accountSid}/Messages/${sid}.json`,
    };
    // The create answer shows the initial status; the stored resource moves on as the sandbox
    // "sends" it at once, so a list right after an ambiguous attempt finds it with a date_sent.
    const answer = { ...message };
    const spec = { ...this.defaultCallbacks, ...callbacks };
    const statuses = spec.statuses ?? (serviceSid ? ["queued", "sent", "delivered"] : ["sent", "delivered"]);
    Object.assign(message, {
      status: [...statuses].reverse().find((s) => s !== "queued" && s !== "accepted") ?? "sent",
      date_sent: rfc2822(now),
      from: message.from ?? "+15005550006",
    });
    this.messages.set(sid, message);
    const statusCallback = str("StatusCallback");
    if (statusCallback && spec.mode !== "off") this.scheduleCallbacks(message, statusCallback, statuses, spec);
    return answer as TwilioMessage;
  }

  private scheduleCallbacks(message: TwilioMessage, url: string, statuses: string[], spec: CallbackSpec): void {
    const mode = spec.mode ?? "hold";
    if (mode === "off") return;
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
      if (status === "undelivered" || status === "failed") params.push(["ErrorCode", spec.errorCode ?? "30003"]);
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
    const ordered = arrange(records, spec).map((r, i, all) => (all.indexOf(r) === i ? r : { ...r, seq: this.state.nextSeq() }));
    this.state.callbacks.push(...ordered);
    if (mode === "post") void deliverInOrder(ordered, spec.delayMs ?? 100);
  }

  /** GET Messages.json with Twilio's filters: To, From, DateSent, DateSent< and DateSent>; newest first. */
  list(accountPath: string, query: URLSearchParams): Record<string, unknown> {
    const to = query.get("To");
    const from = query.get("From");
    const on = query.get("DateSent");
    const before = query.get("DateSent<");
    const after = query.get("DateSent>");
    const pageSize = Math.min(1000, Math.max(1, Number(query.get("PageSize") ?? 50) || 50));
    const page = Math.max(0, Number(query.get("Page") ?? 0) || 0);
    const matches = [...this.messages.values()]
      .filter((m) => (to === null || m.to === to) && (from === null || m.from === from))
      .filter((m) => {
        if (on === null && before === null && after === null) return true;
        // Twilio filters on date_sent: a message without one does not match a DateSent filter.
        if (m.date_sent === null) return false;
        const sent = new Date(m.date_sent).getTime();
        if (on !== null && !sameUtcDay(sent, on)) return false;
        if (before !== null && sent > bound(before, "end")) return false;
        if (after !== null && sent < bound(after, "start")) return false;
        return true;
      })
      .reverse();
    const slice = matches.slice(page * pageSize, (page + 1) * pageSize);
    const base = `${accountPath}/Messages.json`;
    const pageUri = (p: number) => {
      const q = new URLSearchParams(query);
      q.set("PageSize", String(pageSize));
      q.set("Page", String(p));
      return `${base}?${q.toString()}`;
    };
    return {
      end: page * pageSize + Math.max(0, slice.length - 1),
      first_page_uri: pageUri(0),
      next_page_uri: (page + 1) * pageSize < matches.length ? pageUri(page + 1) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? pageUri(page - 1) : null,
      messages: slice,
      start: page * pageSize,
      uri: pageUri(page),
    };
  }
}

function sameUtcDay(ms: number, day: string): boolean {
  return new Date(ms).toISOString().slice(0, 10) === day.slice(0, 10);
}

/** A YYYY-MM-DD bound covers the whole UTC day; a full timestamp is taken as is. */
function bound(value: string, edge: "start" | "end"): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = Date.parse(`${value}T00:00:00Z`);
    return edge === "start" ? start : start + 86_400_000 - 1;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? (edge === "start" ? -Infinity : Infinity) : t;
}

/** The carrier's done date as Twilio passes it through: YYMMDDhhmm. */
function rawDlrDoneDate(d: Date): string {
  const iso = d.toISOString();
  return iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16);
}

