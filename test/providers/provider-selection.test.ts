// providerFor picks live or simulator per provider: PROVIDER_MODE when set; in development, live
// exactly when that provider's credentials are configured; outside development always live, and a
// live provider without credentials is named as unavailable (sends of its types are refused).
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { providerFor, providerModes, providerUnavailable } from "../../src/providers";

// Provider settings of the test environment itself are cleared, so each case states all of its own.
const cleared = Object.fromEntries(
  ["PROVIDER_MODE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "SENDGRID_API_KEY"].map((k) => [k, undefined]),
);
const config = (vars: Record<string, string> = {}) => loadConfig({ ...env, ...cleared, ...vars });
const twilioAuth = { TWILIO_ACCOUNT_SID: "AC0123456789abcdef0123456789abcdef", TWILIO_AUTH_TOKEN: "token" };
const twilioKey = { TWILIO_ACCOUNT_SID: "AC0123456789abcdef0123456789abcdef", TWILIO_API_KEY_SID: "SK0123456789abcdef0123456789abcdef", TWILIO_API_KEY_SECRET: "secret" };

describe("provider selection", () => {
  it("uses the simulator for every type when no credentials are set", () => {
    expect(providerModes(config())).toEqual({ twilio: "simulator", sendgrid: "simulator" });
    for (const type of ["sms", "mms", "email"] as const) expect(providerFor(config(), type).mode).toBe("simulator");
  });

  it("goes live per provider: Twilio credentials make sms and mms live while email stays simulated", () => {
    const c = config(twilioAuth);
    expect(providerModes(c)).toEqual({ twilio: "live", sendgrid: "simulator" });
    expect(providerFor(c, "sms")).toMatchObject({ name: "twilio", mode: "live" });
    expect(providerFor(c, "mms")).toMatchObject({ name: "twilio", mode: "live" });
    expect(providerFor(c, "email")).toMatchObject({ name: "sendgrid", mode: "simulator" });
  });

  it("counts an API key pair with the Account SID as Twilio credentials, but not an Account SID alone", () => {
    expect(providerModes(config(twilioKey)).twilio).toBe("live");
    expect(providerModes(config({ TWILIO_ACCOUNT_SID: twilioAuth.TWILIO_ACCOUNT_SID })).twilio).toBe("simulator");
  });

  it("makes email live with a SendGrid key, and gives the live SendGrid client no candidate list", () => {
    const provider = providerFor(config({ SENDGRID_API_KEY: "SG.key" }), "email");
    expect(provider).toMatchObject({ name: "sendgrid", mode: "live" });
    expect(provider.listCandidates).toBeUndefined();
    expect(providerFor(config(twilioAuth), "sms").listCandidates).toEqual(expect.any(Function));
  });

  it("never simulates outside development: a provider without credentials stays live and is named unavailable with what is missing", () => {
    const production = config({ ...twilioAuth, ENVIRONMENT: "production" });
    expect(providerModes(production)).toEqual({ twilio: "live", sendgrid: "live" });
    expect(providerUnavailable(production, "sms")).toBeNull();
    expect(providerUnavailable(production, "email")).toEqual({ provider: "sendgrid", missing: ["SENDGRID_API_KEY"] });
    expect(providerUnavailable(config({ ENVIRONMENT: "production", TWILIO_ACCOUNT_SID: twilioAuth.TWILIO_ACCOUNT_SID }), "mms")).toEqual({
      provider: "twilio",
      missing: ["TWILIO_AUTH_TOKEN (or TWILIO_API_KEY_SID + TWILIO_API_KEY_SECRET)"],
    });
    // Only an explicit PROVIDER_MODE simulates there.
    expect(providerUnavailable(config({ ENVIRONMENT: "production", PROVIDER_MODE: "simulator" }), "email")).toBeNull();
    expect(providerUnavailable(config(), "email")).toBeNull();
  });

  it("lets PROVIDER_MODE override the credentials either way", () => {
    expect(providerModes(config({ ...twilioAuth, SENDGRID_API_KEY: "SG.key", PROVIDER_MODE: "simulator" }))).toEqual({ twilio: "simulator", sendgrid: "simulator" });
    expect(providerModes(config({ PROVIDER_MODE: "live" }))).toEqual({ twilio: "live", sendgrid: "live" });
  });
});
