// Webhook routes (API-CONTRACT §6, §7.3-7.4): thin handlers over the intake pipeline; each route
// differs only in how it answers a delivery that was processed (or recognised as a duplicate).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { badRequest } from "../errors";
import type { AppContext, AppEnv } from "../http/context";
import { STATUS_PROVIDERS, webhookStatus, type StatusProvider } from "../services/webhooks";
import { INTAKES, intakeSendgrid, intakeTwilio } from "../webhooks/intake";

const unknownProvider = (provider: string) => badRequest(`Unknown provider: ${provider}`);

/** Twilio expects TwiML; an empty <Response> sends no reply message. */
const twimlOk = (c: AppContext) => c.body("<Response></Response>", 200, { "Content-Type": "application/xml" });

const legacyOk = (c: AppContext) => c.json({ status: "success", message: "Webhook processed" });

export function registerWebhookRoutes(app: OpenAPIHono<AppEnv>) {
  app.post("/api/v1/webhooks/twilio", async (c) => {
    await intakeTwilio(c);
    return twimlOk(c);
  });

  app.post("/api/v1/webhooks/sendgrid", async (c) => {
    await intakeSendgrid(c);
    return c.json({ status: "ok" });
  });

  app.post("/api/v1/webhooks/generic/:provider", async (c) => {
    const provider = c.req.param("provider");
    const intake = INTAKES.get(provider);
    if (!intake) throw unknownProvider(provider);
    return c.json({ status: "ok", result: await intake(c) });
  });

  app.get("/api/v1/webhooks/status/:provider", async (c) => {
    const provider = c.req.param("provider");
    if (!(STATUS_PROVIDERS as readonly string[]).includes(provider)) throw unknownProvider(provider);
    return c.json(await webhookStatus(c.get("deps"), c.get("config"), provider as StatusProvider));
  });

  app.post("/api/webhooks/sms", async (c) => {
    await intakeTwilio(c);
    return legacyOk(c);
  });

  app.post("/api/webhooks/email", async (c) => {
    await intakeSendgrid(c);
    return legacyOk(c);
  });
}
