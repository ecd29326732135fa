// The built-in simulator (docs/api.md): no network, fixed outcomes for magic recipients so
// that every path of the pipeline can be exercised by hand, optional latency and random failures.
//
// Magic recipients:
//   +15005550001                 permanent error 21211 (invalid 'To' number)
//   +15005550002                 rate limited (20429) on every attempt, Retry-After 1 s
//   +15005550003                 transient server error (500) on every attempt
//   +15005550004                 timeout after the request was sent (ambiguous)
//   permanent-failure@…          permanent error invalid_recipient
//   transient-failure@…          transient error server_error on every attempt
//   timeout@…                    timeout after the request was sent (ambiguous)
import type { Config } from "../config";
import { ProviderError, providerNameFor, type OutboundMessage, type Provider, type SendResult } from "./types";

const hex = (bytes: number) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const sendgridId = () => Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join("");

export function simulatedOutcome(message: OutboundMessage): ProviderError | null {
  const to = message.to.toLowerCase();
  const local = to.includes("@") ? to.slice(0, to.indexOf("@")) : "";
  if (to === "+15005550001") return new ProviderError("permanent", "21211", "Invalid 'To' phone number", { httpStatus: 400 });
  if (to === "+15005550002") return new ProviderError("rate_limited", "20429", "Too many requests", { httpStatus: 429, retryAfter: 1 });
  if (to === "+15005550003" || local === "transient-failure") {
    return new ProviderError("transient", "server_error", "Internal server error", { httpStatus: 500 });
  }
  if (to === "+15005550004" || local === "timeout") {
    return new ProviderError("timeout", "timeout", "Provider did not answer in time", { ambiguous: true });
  }
  if (local === "permanent-failure") return new ProviderError("permanent", "invalid_recipient", "Invalid recipient", { httpStatus: 400 });
  return null;
}

export function createSimulator(config: Config, type: OutboundMessage["type"]): Provider {
  const name = providerNameFor(type);
  return {
    name,
    mode: "simulator",
    async send(message: OutboundMessage): Promise<SendResult> {
      if (config.SIMULATOR_LATENCY_MS > 0) await new Promise((r) => setTimeout(r, config.SIMULATOR_LATENCY_MS));
      const magic = simulatedOutcome(message);
      if (magic) throw magic;
      const roll = Math.random();
      if (roll < config.SIMULATOR_429_RATE) {
        throw new ProviderError("rate_limited", "20429", "Too many requests", { httpStatus: 429, retryAfter: 1 });
      }
      if (roll < config.SIMULATOR_429_RATE + config.SIMULATOR_FAILURE_RATE) {
        throw new ProviderError("transient", "server_error", "Simulated server error", { httpStatus: 500 });
      }
      return name === "twilio"
        ? { providerMessageId: `SM${hex(16)}`, providerStatus: "queued", httpStatus: 201 }
        : { providerMessageId: sendgridId(), providerStatus: "accepted", httpStatus: 202 };
    },
  };
}
