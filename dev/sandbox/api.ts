// The provider sandbox's public surface that code in the Workers runtime may import too (tests,
// helpers): fake credentials and the JSON shapes of its control API. No Node imports here.

/** Fake credentials the sandbox accepts by default (AC + 32 hex, like a real Account SID). */
export const SANDBOX_CREDENTIALS = {
  twilioAccountSid: "AC0123456789abcdef0123456789abcdef",
  twilioAuthToken: "sandbox-auth-token",
  twilioApiKeySid: "SK0123456789abcdef0123456789abcdef",
  twilioApiKeySecret: "sandbox-api-key-secret",
  sendgridApiKey: "SG.sandbox.sandbox-api-key",
  /** SENDGRID_WEBHOOK_PUBLIC_KEY for the sandbox's signed events (its fixed, public, dev-only key pair) */
  sendgridWebhookPublicKey:
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPttZyWonR9LpPlxRnsSjeF9D1823Ck95ZIuCCYILpLLeYEggVFmttnkq/ac+yy096vz4RqhK7VSMlAaM0XsoKA==",
} as const;

/** The private half (PKCS#8 DER, base64) of sendgridWebhookPublicKey. A throwaway key for local signing only. */
export const SANDBOX_SENDGRID_SIGNING_KEY =
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtAuX3r85dxKrwuZ2fN/zwTCt4I7Y0WfAALw7SKsMli+hRANCAAQ+21nJaidH0uk+XFGexKN4X0PXzbcKT3lki4IJggukst5gSCBUWa22eSr9pz7LLT3q/PhGqErtVIyUBozReygo";

export type ProviderKind = "twilio" | "sendgrid" | "unknown";

export interface RecordedRequest {
  seq: number;
  time: string;
  provider: ProviderKind;
  method: string;
  path: string;
  /** raw query string without "?", byte for byte */
  query: string;
  /** lower-cased names; repeated headers joined with ", " */
  headers: Record<string, string>;
  rawBody: string;
  /** form → {name: value | value[]} (repeated names become arrays), JSON → the value, else null */
  body: unknown;
  /** recipient key: Twilio `To`, or the first SendGrid `to` email (lower-cased) */
  to: string | null;
  /**
   * The service's own message id: the `message_id` query parameter of a Twilio create's
   * StatusCallback URL, or SendGrid's `personalizations[0].custom_args.message_id`; else null.
   */
  messageId: string | null;
  /** what the sandbox did: "ok", "429", "hang", "accept-then-hang", a validation code, ... */
  outcome: string | null;
}

export interface CallbackSpec {
  /** post = deliver to the URL; hold = only record (tests replay them); off = none */
  mode?: "post" | "hold" | "off";
  /** Twilio MessageStatus values or SendGrid event names, in the order the provider would send them */
  statuses?: string[];
  /** deliver every callback twice */
  duplicate?: boolean;
  /** deliver in reverse order */
  reverse?: boolean;
  /** pause before each delivery (post mode) */
  delayMs?: number;
  /** Twilio ErrorCode on undelivered/failed callbacks; default 30003 */
  errorCode?: string;
  /** SendGrid only: where to post events (default: the sandbox's sendgridEventsUrl) */
  url?: string;
  /**
   * Twilio only: how long an accepted message stays queued (`date_sent: null`) before the sandbox
   * sends it; 0 (the default) sends it right after the create answer.
   */
  holdMs?: number;
  /** Twilio only: keep accepted messages queued until `POST /__sandbox/release` */
  hold?: boolean;
}

/** Account-wide credential states: revoked answers 401, forbidden (SendGrid: no mail.send scope) 403. */
export interface CredentialStates {
  twilio?: "valid" | "revoked";
  sendgrid?: "valid" | "revoked" | "forbidden";
}

/** A Twilio message inserted as if another system on the same account had sent it. */
export interface ForeignMessageSpec {
  to: string;
  from: string;
  body: string;
  /** ISO 8601 or RFC 2822; default now */
  date_created?: string;
  /** ISO 8601 or RFC 2822, or null for a message still queued; default date_created */
  date_sent?: string | null;
  /** default "delivered", or "queued" when date_sent is null */
  status?: string;
  num_media?: number;
  messaging_service_sid?: string | null;
}

/** An email address object as Mail Send takes it. */
export interface MailAddress {
  email: string;
  name?: string;
}

/** A mail SendGrid accepted, parsed: what the recipients would see. */
export interface SentMail {
  /** X-Message-Id */
  sgMessageId: string;
  /** our message id (personalizations[0].custom_args.message_id) */
  messageId: string | null;
  time: string;
  from: MailAddress;
  replyTo: MailAddress | null;
  replyToList: MailAddress[];
  /** one per personalization, with the subject that applies to it */
  personalizations: { to: MailAddress[]; cc: MailAddress[]; bcc: MailAddress[]; subject: string | null; customArgs: Record<string, string> }[];
  subject: string | null;
  /** the text/plain and text/html content values, null when absent */
  text: string | null;
  html: string | null;
  attachments: { filename: string; type: string | null; disposition: string; contentId: string | null; bytes: number }[];
  customArgs: Record<string, string>;
  /** every recipient (to, cc and bcc of every personalization), lower-cased */
  recipients: string[];
  request: Record<string, unknown>;
}

export interface CallbackRecord {
  seq: number;
  time: string;
  provider: "twilio" | "sendgrid";
  to: string;
  providerMessageId: string;
  /** MessageStatus, or the SendGrid event name */
  status: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  mode: "post" | "hold";
  delivered: boolean;
  responseStatus?: number;
  error?: string;
}

/** An error answer given as an object: any status, Twilio code or SendGrid message, headers, raw body. */
export interface ErrorOutcome {
  status: number;
  code?: number | string;
  message?: string;
  retryAfter?: number;
  headers?: Record<string, string>;
  /** answered as text/html instead of the provider's JSON error */
  body?: string;
}

/**
 * An outcome as the control API takes it. Strings:
 *   ok | hang | accept-then-hang | reset | accept-then-reset | slow:<ms>
 *   <3-digit HTTP status>[:<retry-after s>]     e.g. 500, 503, 429:2, 400, 413
 *   <5-digit Twilio error code>[:<retry-after>]  e.g. 21211, 21610, 21614, 20429:1, 20003
 * or an ErrorOutcome object for anything else.
 */
export type OutcomeSpec = string | ErrorOutcome;
