// Which provider serves a message type. PROVIDER_MODE decides when set; otherwise each provider
// is live exactly when its credentials are configured, so a deployment with Twilio keys but no
// SendGrid key sends SMS for real and simulates email (API-CONTRACT §1.9).
import type { Config } from "../config";
import type { Channel } from "../validation/address";
import { createSendGrid } from "./sendgrid";
import { createSimulator } from "./simulator";
import { createTwilio, twilioCredentials } from "./twilio";
import { providerNameFor, type Provider, type ProviderName } from "./types";

export type ProviderMode = "live" | "simulator";

export function providerModes(config: Config): Record<ProviderName, ProviderMode> {
  const configured: Record<ProviderName, boolean> = {
    twilio: Boolean(config.TWILIO_ACCOUNT_SID) && twilioCredentials(config) !== null,
    sendgrid: Boolean(config.SENDGRID_API_KEY),
  };
  const mode = (name: ProviderName): ProviderMode => config.PROVIDER_MODE ?? (configured[name] ? "live" : "simulator");
  return { twilio: mode("twilio"), sendgrid: mode("sendgrid") };
}

export function providerFor(config: Config, type: Channel): Provider {
  const name = providerNameFor(type);
  if (providerModes(config)[name] === "simulator") return createSimulator(config, type);
  return name === "twilio" ? createTwilio(config) : createSendGrid(config);
}
