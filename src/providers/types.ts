// The provider interface: one call per message attempt, a typed result or a typed error whose
// class decides what the pipeline does next (docs/architecture.md invariant 5, docs/api.md).
import type { Channel } from "../validation/address";
import type { MessageContent } from "../validation/messages";

export type ProviderName = "twilio" | "sendgrid";

/**
 * permanent: the message's own fault, dead-lettered at once. transient and timeout: retried, each
 * counting as an attempt unless the provider as a whole is down. rate_limited and credentials: the
 * provider throttles us or refuses our credentials; never the message's fault, never counted.
 */
export type ErrorClass = "rate_limited" | "transient" | "timeout" | "permanent" | "credentials";

/** When a request was in flight, epoch ms by our clock. */
export interface Window {
  startedAt: number;
  endedAt: number;
}

/** A window widened by the clock skew allowed between us and the provider, and a second for its timestamps' resolution. */
export function widen(window: Window, skewMs: number): Window {
  return { startedAt: window.startedAt - skewMs - 1000, endedAt: window.endedAt + skewMs + 1000 };
}

/** Provider messages that could be the result of an ambiguous attempt. */
export interface CandidateList {
  candidates: { sid: string; status: string; createdMs: number }[];
  /** false when the provider's list could not be read back to the earliest window */
  complete: boolean;
}

export interface OutboundMessage extends MessageContent {
  id: string;
  attempt: number;
  /** the claim that led to this attempt */
  claimSeq: number;
  createdAt: string;
  /** an earlier attempt may have been accepted by the provider */
  ambiguousAttempt: boolean;
  /** when each ambiguous attempt was in flight */
  ambiguousWindows: Window[];
  /** the recipient opted out of messages from this sender (STOP) */
  optedOut: boolean;
  /** email: a recipient (to, cc or bcc) is on the suppression list, and why */
  suppressed?: { address: string; reason: string } | null;
}

export interface SendResult {
  providerMessageId: string;
  providerStatus: string;
  httpStatus?: number;
}

export class ProviderError extends Error {
  constructor(
    readonly errorClass: ErrorClass,
    readonly code: string,
    message: string,
    readonly opts: {
      httpStatus?: number;
      /** seconds the provider asked us to wait */
      retryAfter?: number;
      /** the request may have been accepted: a timeout or reset after it was sent */
      ambiguous?: boolean;
      /** refused before anything was sent to the provider */
      notSent?: boolean;
      /** not attempted for a reason of ours (the invocation's subrequest budget): does not count */
      deferred?: boolean;
    } = {},
  ) {
    super(message);
    this.name = "ProviderError";
  }
}

export interface Provider {
  readonly name: ProviderName;
  readonly mode: "live" | "simulator";
  send(message: OutboundMessage): Promise<SendResult>;
  /**
   * After an ambiguous attempt: the provider's messages with this message's content created inside
   * one of the windows. Attribution (src/queue/reconcile.ts) decides which, if any, is ours.
   * Providers that cannot be asked leave it out; their events settle ambiguous sends instead.
   */
  listCandidates?(message: OutboundMessage, windows: Window[]): Promise<CandidateList>;
}

export const providerNameFor = (type: Channel): ProviderName => (type === "email" ? "sendgrid" : "twilio");
