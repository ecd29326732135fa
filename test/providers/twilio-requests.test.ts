// The exact HTTP requests the live Twilio client sends (method, URL, headers, form fields), checked
// against what the provider sandbox received, and what it makes of Twilio's success answers.
import { describe, expect, it } from "vitest";
import { createTwilio } from "../../src/providers/twilio";
import { SANDBOX_CREDENTIALS, outbound, received, sandboxConfig, sandboxUrl, uniquePhone } from "../helpers/sandbox";

const ACCOUNT = SANDBOX_CREDENTIALS.twilioAccountSid;
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

describe("Twilio client requests", () => {
  it("sends an SMS as POST Messages.json, form-encoded, Basic auth with Account SID and Auth Token, To/From/Body and a StatusCallback carrying our message id", async () => {
    const to = uniquePhone();
    const message = outbound({ type: "sms", to, from: "+15551234567", body: "Hello there & welcome: 50% off?" });
    const result = await createTwilio(sandboxConfig()).send(message);

    const [request, ...rest] = await received(to);
    expect(rest).toHaveLength(0);
    expect(request!.method).toBe("POST");
    expect(`${sandboxUrl()}${request!.path}`).toBe(`${sandboxUrl()}/2010-04-01/Accounts/${ACCOUNT}/Messages.json`);
    expect(request!.query).toBe("");
    expect(request!.headers.authorization).toBe(basic(ACCOUNT, SANDBOX_CREDENTIALS.twilioAuthToken));
    expect(request!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(request!.body).toEqual({
      To: to,
      From: "+15551234567",
      Body: "Hello there & welcome: 50% off?",
      StatusCallback: `https://msg.example.com/api/v1/webhooks/twilio?message_id=${message.id}`,
    });
    // `+` in numbers must be percent-encoded, or Twilio reads a space.
    expect(request!.rawBody).toContain(`To=${encodeURIComponent(to)}`);

    expect(result.providerMessageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(result).toMatchObject({ providerStatus: "queued", httpStatus: 201 });
  });

  it("sends an MMS with one MediaUrl field per attachment, in order, and Twilio answers with an MM sid", async () => {
    const to = uniquePhone();
    const media = ["https://cdn.example.com/a.jpg", "https://cdn.example.com/b.png?size=large&v=2"];
    const result = await createTwilio(sandboxConfig()).send(outbound({ type: "mms", to, body: "Look", attachments: media }));

    const [request] = await received(to);
    expect(request!.body).toMatchObject({ To: to, Body: "Look", MediaUrl: media });
    const fields = [...new URLSearchParams(request!.rawBody).entries()].map(([name]) => name);
    expect(fields.filter((n) => n === "MediaUrl")).toHaveLength(2);
    expect(result.providerMessageId).toMatch(/^MM[0-9a-f]{32}$/);
  });

  it("sends an MMS without a body as MediaUrl alone, with no empty Body field", async () => {
    const to = uniquePhone();
    await createTwilio(sandboxConfig()).send(outbound({ type: "mms", to, body: null, attachments: ["https://cdn.example.com/only.gif"] }));
    const [request] = await received(to);
    expect(request!.body).not.toHaveProperty("Body");
    expect(request!.body).toMatchObject({ MediaUrl: "https://cdn.example.com/only.gif" });
  });

  it("authenticates with the API Key SID and secret when they are configured, still under the account's path", async () => {
    const to = uniquePhone();
    const config = sandboxConfig({
      TWILIO_AUTH_TOKEN: undefined,
      TWILIO_API_KEY_SID: SANDBOX_CREDENTIALS.twilioApiKeySid,
      TWILIO_API_KEY_SECRET: SANDBOX_CREDENTIALS.twilioApiKeySecret,
    });
    await createTwilio(config).send(outbound({ type: "sms", to }));
    const [request] = await received(to);
    expect(request!.path).toBe(`/2010-04-01/Accounts/${ACCOUNT}/Messages.json`);
    expect(request!.headers.authorization).toBe(basic(SANDBOX_CREDENTIALS.twilioApiKeySid, SANDBOX_CREDENTIALS.twilioApiKeySecret));
  });

  it("sends MessagingServiceSid instead of From when a Messaging Service is configured, and reports Twilio's initial status accepted", async () => {
    const to = uniquePhone();
    const service = "MG0123456789abcdef0123456789abcdef";
    const result = await createTwilio(sandboxConfig({ TWILIO_MESSAGING_SERVICE_SID: service })).send(outbound({ type: "sms", to }));
    const [request] = await received(to);
    expect(request!.body).toMatchObject({ To: to, MessagingServiceSid: service });
    expect(request!.body).not.toHaveProperty("From");
    expect(result.providerStatus).toBe("accepted");
  });

  it("leaves StatusCallback out when PUBLIC_BASE_URL is not set, and drops a trailing slash of the base when it is", async () => {
    const bare = uniquePhone();
    await createTwilio(sandboxConfig({ PUBLIC_BASE_URL: undefined })).send(outbound({ type: "sms", to: bare }));
    expect((await received(bare))[0]!.body).not.toHaveProperty("StatusCallback");

    const slashed = uniquePhone();
    const message = outbound({ type: "sms", to: slashed });
    await createTwilio(sandboxConfig({ PUBLIC_BASE_URL: "https://msg.example.com/" })).send(message);
    expect((await received(slashed))[0]!.body).toMatchObject({ StatusCallback: `https://msg.example.com/api/v1/webhooks/twilio?message_id=${message.id}` });
  });

  it("fails with a credentials error (ours, never the message's) without a network call when no Twilio credentials are configured", async () => {
    const to = uniquePhone();
    const config = sandboxConfig({ TWILIO_AUTH_TOKEN: undefined });
    await expect(createTwilio(config).send(outbound({ type: "sms", to }))).rejects.toMatchObject({ errorClass: "credentials", code: "not_configured" });
    expect(await received(to)).toHaveLength(0);
  });
});
