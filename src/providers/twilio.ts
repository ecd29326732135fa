// Twilio Programmable Messaging over fetch (the official SDK does not run on Workers): Messages
// create for sends, Messages list for reconciling an ambiguous attempt, and the mapping of
// Twilio's answers onto the pipeline's error classes (DESIGN.md invariant 4).
import type { Config } from "../config";
import { base64, callProvider, parseJson, retryAfterSeconds, type HttpAnswer } from "./http";
import { ProviderError, type OutboundMessage, type Provider, type SendResult } from "./types";

const API_VERSION = "2010-04-01";
/** How far our clock and Twilio's may disagree when matching a listed message to ours. */
const CLOCK_SKEW_MS = 10 * 60 * 1000;
/** Pages of 50 messages to the same recipient examined by a lookup before giving up. */
const LOOKUP_MAX_PAGES = 3;

interface TwilioMessage {
  sid?: string;
  status?: string;
  to?: string;
  from?: string | null;
  body?: string | null;
  direction?: string;
  num_media?: string;
  date_created?: string;
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
  // 5xx: Twilio did not accept the message (it answered, and said so), so sending again is safe.
  if (answer.status >= 500) return new ProviderError("transient", code, message, opts);
  // Every other 4xx is about the request or the recipient (21211 invalid To, 21610 opted out,
  // 21614 not mobile, 20003 bad credentials...): the same request would fail the same way.
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
    return new ProviderError("permanent", "not_configured", "Twilio credentials are not configured (TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN or an API key)");
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
     * Did an earlier, ambiguous attempt create this message at Twilio? Lists the messages to the
     * recipient (and from our sender) sent since the message was created, and matches the body and
     * media count. Twilio's Message resource does not echo the StatusCallback URL, so our message id
     * cannot be matched; a message of ours with the same body to the same recipient in the same
     * window would be taken for this one. Any failure is thrown as ambiguous: it did not rule out
     * that the earlier attempt was accepted.
     */
    async lookup(message: OutboundMessage): Promise<SendResult | null> {
      if (!credentials || !accountSid) throw missingCredentials();
      const createdMs = Date.parse(message.createdAt);
      const query = new URLSearchParams();
      query.set("To", message.to);
      if (!config.TWILIO_MESSAGING_SERVICE_SID) query.set("From", message.from);
      // Twilio's filter is the parameter `DateSent>` (the docs write `DateSent>=YYYY-MM-DD`), a UTC date.
      query.set("DateSent>", new Date(createdMs - CLOCK_SKEW_MS).toISOString().slice(0, 10));
      query.set("PageSize", "50");
      const origin = config.TWILIO_API_BASE_URL.replace(/\/+$/, "");
      let url: string | null = `${messagesUrl}?${query.toString()}`;
      const candidates: TwilioMessage[] = [];
      for (let page = 0; url && page < LOOKUP_MAX_PAGES; page++) {
        let answer: HttpAnswer;
        try {
          answer = await callProvider(url, { method: "GET", headers: headers() }, config.PROVIDER_TIMEOUT_MS);
        } catch (error) {
          throw asAmbiguous(error);
        }
        if (answer.status < 200 || answer.status > 299) throw asAmbiguous(twilioError(answer));
        const list = parseJson(answer.text) as { messages?: TwilioMessage[]; next_page_uri?: string | null } | undefined;
        candidates.push(...(list?.messages ?? []).filter((m) => matches(m, message, createdMs)));
        url = list?.next_page_uri ? `${origin}${list.next_page_uri}` : null;
      }
      // The oldest match is the first ambiguous attempt's message.
      const found = candidates.sort((a, b) => Date.parse(a.date_created ?? "") - Date.parse(b.date_created ?? ""))[0];
      return found?.sid ? { providerMessageId: found.sid, providerStatus: found.status ?? "queued", httpStatus: 200 } : null;
    },
  };
}

function matches(listed: TwilioMessage, message: OutboundMessage, createdMs: number): boolean {
  if (!listed.sid || !listed.direction?.startsWith("outbound")) return false;
  if (listed.to !== message.to) return false;
  const created = Date.parse(listed.date_created ?? "");
  if (!Number.isNaN(created) && created < createdMs - CLOCK_SKEW_MS) return false;
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
