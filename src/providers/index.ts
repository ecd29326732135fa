// Which provider serves a message type, and whether it can. Outside development a provider runs
// live or the service says it cannot: the simulator only with an explicit PROVIDER_MODE=simulator,
// and a live provider without credentials makes sends of its types fail fast (503, nothing stored)
// and /ready not ready, naming the missing setting. In development a provider without credentials
// is simulated, so that `npm run dev` works with nothing configured.
import type { Config } from "../config";
import type { Channel } from "../validation/address";
import { createSendGrid } from "./sendgrid";
import { createSimulator } from "./simulator";
import { createTwilio, twilioCredentials } from "./twilio";
import { providerNameFor, type Provider, type ProviderName } from "./types";

export type ProviderMode = "live" | "simulator";

/** The settings a live provider still lacks; empty when it can send. */
export function missingCredentials(config: Config, name: ProviderName): string[] {
  if (name === "sendgrid") return config.SENDGRID_API_KEY ? [] : ["SENDGRID_API_KEY"];
  const missing: string[] = [];
  if (!config.TWILIO_ACCOUNT_SID) missing.push("TWILIO_ACCOUNT_SID");
  if (twilioCredentials(config) === null) missing.push("TWILIO_AUTH_TOKEN (or TWILIO_API_KEY_SID + TWILIO_API_KEY_SECRET)");
  return missing;
}

export function providerModes(config: Config): Record<ProviderName, ProviderMode> {
  const mode = (name: ProviderName): ProviderMode => {
    if (config.PROVIDER_MODE) return config.PROVIDER_MODE;
    if (config.ENVIRONMENT !== "development") return "live";
    return missingCredentials(config, name).length === 0 ? "live" : "simulator";
  };
  return { twilio: mode("twilio"), sendgrid: mode("sendgrid") };
}

/** Why a type cannot be sent with this configuration, or null when it can. */
export function providerUnavailable(config: Config, type: Channel): { provider: ProviderName; missing: string[] } | null {
  const provider = providerNameFor(type);
  if (providerModes(config)[provider] === "simulator") return null;
  const missing = missingCredentials(config, provider);
  return missing.length === 0 ? null : { provider, missing };
}

export function providerFor(config: Config, type: Channel): Provider {
  const name = providerNameFor(type);
  if (providerModes(config)[name] === "simulator") return createSimulator(config, type);
  return name === "twilio" ? createTwilio(config) : createSendGrid(config);
}
