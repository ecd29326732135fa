// Proves that log lines never carry phone numbers or email addresses, while ids stay readable.
import { afterEach, describe, expect, it, vi } from "vitest";
import { log, redact } from "../src/log";

describe("log redaction", () => {
  afterEach(() => vi.restoreAllMocks());

  it("redacts numbers and addresses in any string field, nested too", () => {
    const lines: string[] = [];
    vi.spyOn(console, "warn").mockImplementation((line: string) => void lines.push(line));
    log("warn", "provider_error", {
      message_id: "01a222d8-3226-7050-9c26-02c4965ec3f1",
      error_message: "The 'To' number +15559876543 is not a valid phone number for Ann@Example.com",
      nested: { to: "(555) 987-6543", list: ["bob@example.org"] },
      count: 12345678,
    });
    const line = lines[0]!;
    expect(line).not.toMatch(/5559876543|987-6543|Ann@Example\.com|bob@example\.org/);
    expect(line).toContain("01a222d8-3226-7050-9c26-02c4965ec3f1");
    expect(line).toContain("[phone]");
    expect(line).toContain("[email]");
    expect(JSON.parse(line).count).toBe(12345678);
  });

  it("leaves short numbers, timestamps and status codes alone", () => {
    expect(redact("HTTP 503 after 2500 ms")).toBe("HTTP 503 after 2500 ms");
    expect(redact("retry in 30 s")).toBe("retry in 30 s");
    expect(redact("due 2026-11-28T15:48:39.376Z")).toBe("due 2026-11-28T15:48:39.376Z");
    expect(redact("connect ECONNREFUSED 127.0.0.1:5432")).toBe("connect ECONNREFUSED 127.0.0.1:5432");
  });
});

describe("log scan", () => {
  it("sends, webhooks and failures with known numbers, addresses and bodies leave none of them in the logs", async () => {
    const { call, jsonRequest, DEAD_URL } = await import("./helpers/http");
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    const secretBody = `secret body ${crypto.randomUUID()}`;
    const sms = { type: "sms", from: "+12025550147", to: "+13035550148", body: secretBody };
    await call("/api/v1/messages/send", jsonRequest("POST", sms));
    await call("/api/v1/messages/send", jsonRequest("POST", sms), { UPSTASH_REDIS_REST_URL: DEAD_URL, REDIS_TIMEOUT_MS: "300" });
    await call("/api/v1/messages/send", jsonRequest("POST", { type: "email", from: "alice@example.com", to: "bob@example.org", body: secretBody }));
    await call("/api/v1/messages/send", jsonRequest("POST", { ...sms, to: "+1303555" }));
    await call("/api/v1/webhooks/twilio", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `MessageSid=SM${crypto.randomUUID().replace(/-/g, "")}&From=%2B13035550148&To=%2B12025550147&Body=${encodeURIComponent(secretBody)}`,
    });
    await call("/api/v1/webhooks/twilio", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "From=%2B13035550148" }, { ENVIRONMENT: "production", API_KEYS: "k" });
    const all = lines.join("\n");
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of ["2025550147", "3035550148", "alice@example.com", "bob@example.org", secretBody]) {
      expect(all).not.toContain(secret);
    }
  });
});
