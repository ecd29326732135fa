// Proves the production fail-closed rules: outside development a webhook whose secret is missing
// is refused (never accepted unsigned), and /ready names every missing or unsafe setting.
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { getJson } from "./helpers/fixtures";

const production = { ENVIRONMENT: "production", API_KEYS: "prod-key" };

async function storedWithProviderId(id: string) {
  const { body } = await getJson(`/api/v1/messages?direction=inbound&limit=100`);
  return body.messages.filter((m: any) => m.provider_message_id === id).length;
}

describe("production without webhook secrets", () => {
  it("refuses unsigned Twilio and SendGrid deliveries with 403 and stores nothing", async () => {
    const sid = `SM${crypto.randomUUID().replace(/-/g, "")}`;
    const twilio = await call(
      "/api/v1/webhooks/twilio",
      { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `MessageSid=${sid}&From=%2B15559876543&To=%2B15551234567&Body=hi` },
      production,
    );
    expect(twilio.status).toBe(403);
    expect(await twilio.json()).toEqual({ error: "forbidden", message: "Invalid webhook signature", details: null });
    const legacy = await call(
      "/api/webhooks/sms",
      { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `MessageSid=${sid}&From=%2B15559876543&To=%2B15551234567&Body=hi` },
      production,
    );
    expect(legacy.status).toBe(403);
    const sendgrid = await call(
      "/api/v1/webhooks/sendgrid",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ xillio_id: sid, from: "a@example.com", to: "b@example.com", body: "x" }) },
      production,
    );
    expect(sendgrid.status).toBe(403);
    expect(await storedWithProviderId(sid)).toBe(0);
  });

  it("still accepts unsigned deliveries in development (the contract's default)", async () => {
    const sid = `SM${crypto.randomUUID().replace(/-/g, "")}`;
    const res = await call("/api/v1/webhooks/twilio", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `MessageSid=${sid}&From=%2B15559876543&To=%2B15551234567&Body=hi`,
    });
    expect(res.status).toBe(200);
    expect(await storedWithProviderId(sid)).toBe(1);
  });
});

describe("/ready in production", () => {
  it("names every missing or unsafe setting, and only those", async () => {
    const res = await call("/ready", {}, { ENVIRONMENT: "production", PUBLIC_BASE_URL: "http://msg.example.com", NEON_WS_PROXY: "127.0.0.1:1/v1" });
    const body = await res.json<any>();
    const problems: string[] = (body.checks ?? body.details.checks).configuration.problems;
    // The test environment's provider and Redis URLs are plain http (the sandbox and the bridge).
    expect(problems).toEqual([
      "API_KEYS is not set: every protected route answers 401",
      "PUBLIC_BASE_URL must be an https URL",
      "TWILIO_AUTH_TOKEN is not set: Twilio webhooks are refused",
      "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid Event Webhook deliveries are refused",
      "SENDGRID_PARSE_PUBLIC_KEY is not set: SendGrid Inbound Parse deliveries are refused",
      "METRICS_TOKEN is not set: /metrics is readable by anyone",
      "NEON_WS_PROXY is a development setting: unset it",
      "TWILIO_API_BASE_URL must be an https URL",
      "SENDGRID_API_BASE_URL must be an https URL",
      "UPSTASH_REDIS_REST_URL must be an https URL",
    ]);
  });

  it("is not ready while a live provider lacks credentials, and names the setting; sends of other types still work", async () => {
    const res = await call("/ready", {}, { ENVIRONMENT: "production", API_KEYS: "prod-key", SENDGRID_API_KEY: "" });
    expect(res.status).toBe(503);
    const body = await res.json<any>();
    expect(body.message).toBe("Not ready: sendgrid not configured (SENDGRID_API_KEY)");
    // The circuit part reflects earlier test files' runs of the email shard (they share Redis); not
    // paused is what matters here.
    const { circuit, ...sendgrid } = body.details.checks.providers.sendgrid;
    expect(sendgrid).toEqual({ status: "not_configured", mode: "live", missing: ["SENDGRID_API_KEY"] });
    expect(circuit === null || circuit.state === "closed").toBe(true);
    expect(body.details.checks.providers.twilio.status).not.toBe("not_configured");
  });

  it("reports no problems in development", async () => {
    const { body } = await getJson("/ready");
    expect(body.checks.configuration).toEqual({ status: "healthy", problems: [] });
  });
});
