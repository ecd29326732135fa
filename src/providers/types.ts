// The provider interface: one call per message attempt, a typed result or a typed error whose
// class decides what the pipeline does next (DESIGN.md invariant 4, API-CONTRACT §2.4).
import type { Channel } from "../validation/address";
import type { MessageContent } from "../validation/messages";

export type ProviderName = "twilio" | "sendgrid";

/** rate_limited and transient and timeout are retried; permanent is dead-lettered at once. */
export type ErrorClass = "rate_limited" | "transient" | "timeout" | "permanent";

export interface OutboundMessage extends MessageContent {
  id: string;
  attempt: number;
  createdAt: string;
  /** an earlier attempt may have been accepted by the provider */
  ambiguousAttempt: boolean;
  /** the recipient opted out of messages from this sender (STOP) */
  optedOut: boolean;
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
   * After an ambiguous attempt: did the provider accept this message? Providers that cannot tell
   * leave it out, and the pipeline falls back to retrying.
   */
  lookup?(message: OutboundMessage): Promise<SendResult | null>;
}

export const providerNameFor = (type: Channel): ProviderName => (type === "email" ? "sendgrid" : "twilio");
