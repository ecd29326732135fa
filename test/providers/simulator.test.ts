// Proves the built-in simulator's outcomes (docs/api.md): magic recipients and id formats.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { createSimulator } from "../../src/providers/simulator";
import { ProviderError } from "../../src/providers/types";
import { outbound } from "../helpers/sandbox";

const config = loadConfig({ DATABASE_URL: "postgres://u@h/d", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1", UPSTASH_REDIS_REST_TOKEN: "t" });

async function outcome(type: "sms" | "email", to: string) {
  try {
    return await createSimulator(config, type).send(outbound({ type, to }));
  } catch (error) {
    return error as ProviderError;
  }
}

describe("simulator", () => {
  it.each([
    ["sms", "+15005550001", "permanent", "21211", "Invalid 'To' phone number"],
    ["sms", "+15005550002", "rate_limited", "20429", "Too many requests"],
    ["sms", "+15005550003", "transient", "server_error", "Internal server error"],
    ["sms", "+15005550004", "timeout", "timeout", "Provider did not answer in time"],
    ["email", "permanent-failure@example.com", "permanent", "invalid_recipient", "Invalid recipient"],
    ["email", "transient-failure@example.com", "transient", "server_error", "Internal server error"],
  ] as const)("%s to %s fails with %s %s", async (type, to, errorClass, code, message) => {
    const error = await outcome(type, to);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ errorClass, code, message });
  });

  it("accepts anyone else with Twilio- and SendGrid-shaped ids", async () => {
    expect(await outcome("sms", "+15559876543")).toMatchObject({ providerMessageId: expect.stringMatching(/^SM[0-9a-f]{32}$/) });
    expect(await outcome("email", "someone@example.com")).toMatchObject({ providerMessageId: expect.stringMatching(/^[A-Za-z0-9]{22}$/) });
  });

  it("rate limits carry Retry-After and timeouts are ambiguous", async () => {
    expect(((await outcome("sms", "+15005550002")) as ProviderError).opts.retryAfter).toBe(1);
    expect(((await outcome("sms", "+15005550004")) as ProviderError).opts.ambiguous).toBe(true);
  });
});
