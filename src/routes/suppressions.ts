// Suppression routes (issue 15 §3): SMS opt-outs and email suppressions, listed together, lifted one
// address at a time. Thin over src/services/suppressions.ts.
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../http/context";
import { defineRoute } from "../openapi";
import { listSuppressions, liftSuppression } from "../services/suppressions";
import { oneOf, pageQuery, querySchema } from "../validation/common";

const AT = "2025-01-15T10:30:00.123Z";

const SUPPRESSION_EXAMPLE = {
  address: "ann@example.com",
  channel: "email",
  reason: "bounce",
  sender: null,
  detail: "550 5.1.1 The email account that you tried to reach does not exist.",
  message_id: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f",
  created_at: AT,
} as const;

const Suppression = z
  .object({
    address: z.string().openapi({ description: "The suppressed recipient: E.164 for SMS/MMS, the lower-cased email address for email." }),
    channel: z.enum(["sms", "email"]).openapi({ description: "`sms` covers SMS and MMS." }),
    reason: z.string().openapi({
      description: "SMS: the opt-out keyword the recipient sent (STOP, UNSUBSCRIBE, ...). Email: SendGrid's event: bounce, dropped, spamreport, unsubscribe or group_unsubscribe.",
      example: "bounce",
    }),
    sender: z.string().nullable().openapi({ description: "SMS: our number the recipient opted out of (other numbers may still text them). Email: null, every sender is suppressed." }),
    detail: z.string().nullable().openapi({ description: "Email: SendGrid's reason or status, when it gave one." }),
    message_id: z.guid().nullable().openapi({ description: "The message that carried the keyword, or whose event suppressed the address." }),
    created_at: z.iso.datetime(),
  })
  .openapi("Suppression", { example: SUPPRESSION_EXAMPLE });

const SuppressionList = z
  .object({ suppressions: z.array(Suppression), total: z.int().min(0), limit: z.int().min(0), offset: z.int().min(0) })
  .openapi("SuppressionList", { example: { suppressions: [SUPPRESSION_EXAMPLE], total: 1, limit: 50, offset: 0 } });

const ListRoute = defineRoute({
  scope: "ops",
  method: "get",
  path: "/api/v1/suppressions",
  operationId: "listSuppressions",
  summary: "List suppressed recipients: SMS opt-outs and email suppressions, newest first",
  description:
    "A send to a suppressed recipient is accepted and then fails at once in the worker, without a provider call: status `failed`, error `21610` (SMS opt-out) or `recipient_suppressed` (email; any of to, cc and bcc).",
  tags: ["suppressions"],
  request: { query: querySchema({ channel: oneOf("channel", ["sms", "email"]).optional(), ...pageQuery(500, 50) }) },
  responses: { 200: { description: "A page of suppressions and the total.", content: { "application/json": { schema: SuppressionList } } } },
});

const LiftRoute = defineRoute({
  scope: "ops",
  method: "delete",
  path: "/api/v1/suppressions/{address}",
  operationId: "deleteSuppression",
  summary: "Lift the suppression of an address",
  description:
    "Removes the address's email suppression, or its SMS opt-outs from every sender (the recipient texting START lifts one too). Sends already failed stay failed; `POST /api/v1/messages/{message_id}/retry` sends one again.",
  tags: ["suppressions"],
  request: {
    params: z.object({
      address: z.string().min(1).max(320).openapi({ description: "A phone number (E.164, URL-encoded `+` as `%2B` or literal) or an email address.", example: "ann@example.com" }),
    }),
  },
  responses: {
    200: {
      description: "What was removed.",
      content: {
        "application/json": {
          schema: z.object({ address: z.string(), removed: z.array(Suppression) }).openapi("SuppressionLifted", { example: { address: "ann@example.com", removed: [SUPPRESSION_EXAMPLE] } }),
        },
      },
    },
  },
  errors: { 404: { description: "The address is not suppressed.", example: { error: "not_found", message: "No suppression for ann@example.com" } } },
});

export function registerSuppressionRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(ListRoute, async (c) => {
    const { channel, limit, offset } = c.req.valid("query");
    return c.json(await listSuppressions(c.get("deps"), { channel, limit, offset }), 200);
  });

  app.openapi(LiftRoute, async (c) => {
    const { address } = c.req.valid("param");
    return c.json(await liftSuppression(c.get("deps"), address, c.get("config").DEFAULT_PHONE_REGION), 200);
  });
}
