// Twilio Programmable Messaging over fetch (the official SDK does not run on Workers): Messages
// create for sends, Messages list for reconciling an ambiguous attempt, and the mapping of
// Twilio's answers onto the pipeline's error classes (docs/message-path.md).
import type { Config } from "../config";
import { base64, callProvider, parseJson, retryAfterSeconds, type HttpAnswer } from "./http";
import { ProviderError, widen, type CandidateList, type OutboundMessage, type Provider, type SendResult, type Window } from "./types";

const API_VERSION = "2010-04-01";
/** Pages of LOOKUP_PAGE_SIZE messages between the pair read before the list counts as unread. */
export const LOOKUP_MAX_PAGES = 5;
const LOOKUP_PAGE_SIZE = 1000;

interface TwilioMessage {
  sid?: string;
  status?: string;
  to?: string;
  from?: string | null;
  body?: string | null;
  direction?: string;
  num_media?: string;
  date_created?: string;
  date_sent?: string | null;
}

export function twilioCredentials(config: Config): { user: string; password: string } | null {
  // API keys are Twilio's recommended REST credentials; the Account SID still names the account.
  if (config.TWILIO_API_KEY_SID && config.TWILIO_API_KEY_SECRET) return { user: config.TWILIO_API_KEY_SID, password: config.TWILIO_API_KEY_SECRET };
  if (config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN) return { user: config.TWILIO_ACCOUNT_SID, password: config.TWILIO_AUTH_TOKEN };
  return null;
}

/** The status callback URL of a message: our webhook, carrying our id so callbacks match even before the SID is stored. */
export function statusCallbackUrl(config: Config, messageId: string): string | undefined {
  if (!config.PUBLIC_BASE_URL) return undefined;
  return `${config.PUBLIC_BASE_URL.replace(/\/+$/, "")}/api/v1/webhooks/twilio?message_id=${encodeURIComponent(messageId)}`;
}

/** The form Twilio's Messages create takes, field names as Twilio spells them. */
export function createMessageForm(config: Config, message: OutboundMessage): URLSearchParams {
  const form = new URLSearchParams();
  form.set("To", message.to);
  // With a Messaging Service Twilio picks the sender from its pool; a From outside the pool is refused.
  if (config.TWILIO_MESSAGING_SERVICE_SID) form.set("MessagingServiceSid", config.TWILIO_MESSAGING_SERVICE_SID);
  else form.set("From", message.from);
  if (message.body) form.set("Body", message.body);
  // Media goes with any type: an "sms" that carries attachments would otherwise lose them.
  for (const url of message.attachments) form.append("MediaUrl", url);
  const callback = statusCallbackUrl(config, message.id);
  if (callback) form.set("StatusCallback", callback);
  return form;
}

/** Twilio's answer to a non-2xx: the error class, Twilio's numeric code and its message. */
export function twilioError(answer: HttpAnswer): ProviderError {
  const json = parseJson(answer.text) as { code?: unknown; message?: unknown } | undefined;
  const twilioCode = typeof json?.code === "number" || typeof json?.code === "string" ? String(json.code) : undefined;
  const message = typeof json?.message === "string" ? json.message : `Twilio answered HTTP ${answer.status}`;
  const code = twilioCode ?? `http_${answer.status}`;
  const opts = { httpStatus: answer.status };
  if (answer.status === 429 || twilioCode === "20429") {
    return new ProviderError("rate_limited", twilioCode ?? "20429", message, { ...opts, retryAfter: retryAfterSeconds(answer.headers) });
  }
  // Our credentials or account are refused (20003 Authenticate, 20404 on the account's own
  // Messages resource): every message would fail alike, so it is never a message's fault.
  if (answer.status === 401 || twilioCode === "20003" || twilioCode === "20404") return new ProviderError("credentials", code, message, opts);
  // 5xx: Twilio did not accept the message (it answered, and said so), so sending again is safe.
  if (answer.status >= 500) return new ProviderError("transient", code, message, opts);
  // Every other 4xx is about the request or the recipient (21211 invalid To, 21610 opted out,
  // 21614 not mobile...): the same request would fail the same way.
  return new ProviderError("permanent", code, message, opts);
}

export function createTwilio(config: Config): Provider {
  const accountSid = config.TWILIO_ACCOUNT_SID ?? "";
  const messagesUrl = `${config.TWILIO_API_BASE_URL.replace(/\/+$/, "")}/${API_VERSION}/Accounts/${encodeURIComponent(accountSid)}/Messages.json`;
  const credentials = twilioCredentials(config);
  const headers = (): Record<string, string> => ({
    authorization: credentials ? `Basic ${base64(`${credentials.user}:${credentials.password}`)}` : "",
    accept: "application/json",
  });

  function missingCredentials(): ProviderError {
    return new ProviderError("credentials", "not_configured", "Twilio credentials are not configured (TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN or an API key)");
  }

  return {
    name: "twilio",
    mode: "live",

    async send(message: OutboundMessage): Promise<SendResult> {
      if (!credentials || !accountSid) throw missingCredentials();
      const answer = await callProvider(
        messagesUrl,
        { method: "POST", headers: { ...headers(), "content-type": "application/x-www-form-urlencoded" }, body: createMessageForm(config, message).toString() },
        config.PROVIDER_TIMEOUT_MS,
      );
      if (answer.status < 200 || answer.status > 299) throw twilioError(answer);
      const created = parseJson(answer.text) as TwilioMessage | undefined;
      if (typeof created?.sid !== "string") {
        // Accepted, but we cannot tell what: as ambiguous as no answer at all.
        throw new ProviderError("timeout", "invalid_response", `Twilio answered HTTP ${answer.status} without a message sid`, { httpStatus: answer.status, ambiguous: true });
      }
      return { providerMessageId: created.sid, providerStatus: created.status ?? "queued", httpStatus: answer.status };
    },

    /**
     * Twilio's messages between the pair with this message's body and media count, created inside
     * one of the ambiguous windows. Twilio's list can filter only on `DateSent`, which is empty while
     * Twilio still holds a message, and it sorts by `DateSent`: where messages without one go is not
     * documented, so no page can be known to be the last that matters. The pair's whole list is read
     * (1,000 a page); a pair with more than LOOKUP_MAX_PAGES pages counts as unread (`complete:
     * false`) and attribution holds the message. Our id cannot be matched here (Twilio does not echo
     * the StatusCallback URL): attribution among identical messages is src/queue/reconcile.ts's job.
     * Any failure is thrown as ambiguous: it ruled nothing out.
     */
    async listCandidates(message: OutboundMessage, windows: Window[]): Promise<CandidateList> {
      if (!credentials || !accountSid) throw missingCredentials();
      const wide = windows.map((w) => widen(w, config.RECONCILE_CLOCK_SKEW_MS));
      const query = new URLSearchParams();
      query.set("To", message.to);
      if (!config.TWILIO_MESSAGING_SERVICE_SID) query.set("From", message.from);
      query.set("PageSize", String(LOOKUP_PAGE_SIZE));
      const origin = config.TWILIO_API_BASE_URL.replace(/\/+$/, "");
      let url: string | null = `${messagesUrl}?${query.toString()}`;
      const candidates: CandidateList["candidates"] = [];
      for (let page = 0; page < LOOKUP_MAX_PAGES; page++) {
        let answer: HttpAnswer;
        try {
          answer = await callProvider(url, { method: "GET", headers: headers() }, config.PROVIDER_TIMEOUT_MS);
        } catch (error) {
          throw asAmbiguous(error);
        }
        if (answer.status < 200 || answer.status > 299) throw asAmbiguous(twilioError(answer));
        const list = parseJson(answer.text) as { messages?: TwilioMessage[]; next_page_uri?: string | null } | undefined;
        for (const m of list?.messages ?? []) {
          const createdMs = Date.parse(m.date_created ?? "");
          if (m.sid && matches(m, message) && wide.some((w) => createdMs >= w.startedAt && createdMs <= w.endedAt)) {
            candidates.push({ sid: m.sid, status: m.status ?? "queued", createdMs });
          }
        }
        if (!list?.next_page_uri) return { candidates, complete: true };
        url = `${origin}${list.next_page_uri}`;
      }
      return { candidates, complete: false };
    },
  };
}

function matches(listed: TwilioMessage, message: OutboundMessage): boolean {
  if (!listed.direction?.startsWith("outbound")) return false;
  if (listed.to !== message.to) return false;
  const body = message.body ?? "";
  // Trial accounts prefix the body ("Sent from your Twilio trial account - "), hence endsWith.
  const listedBody = listed.body ?? "";
  if (listedBody !== body && !(body !== "" && listedBody.endsWith(body))) return false;
  if (listed.num_media !== undefined && Number(listed.num_media) !== message.attachments.length) return false;
  return true;
}

function asAmbiguous(error: unknown): ProviderError {
  const e = error instanceof ProviderError ? error : new ProviderError("transient", "network_error", String(error));
  return new ProviderError(e.errorClass, e.code, `reconcile lookup failed: ${e.message}`, { ...e.opts, ambiguous: true });
}
