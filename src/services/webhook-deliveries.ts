// The 24-hour statistics of GET /api/v1/webhooks/status/{provider}: one row per delivery that
// passed its signature check, kept about a day.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Deps } from "../deps";
import { uuidv7 } from "../ids";
import type { WebhookProvider } from "../webhooks/parsers";
import { iso, type Row } from "./representation";


/**
 * Logs one delivery that passed its signature check, and prunes the provider's rows older than
 * the window in the same statement so the table stays bounded without a separate job.
 */
export async function recordDelivery(deps: Deps, provider: WebhookProvider, kind: string, statusCode: number): Promise<void> {
  await deps.db().run(sql`
    with pruned as (delete from webhook_deliveries where provider = ${provider} and received_at < now() - interval '25 hours')
    insert into webhook_deliveries (id, provider, kind, status_code) values (${uuidv7()}, ${provider}, ${kind}, ${statusCode})`);
}

export const STATUS_PROVIDERS = ["twilio", "sendgrid", "internal", "mock"] as const;
export type StatusProvider = (typeof STATUS_PROVIDERS)[number];

export async function webhookStatus(deps: Deps, config: Config, provider: StatusProvider) {
  if (provider === "internal" || provider === "mock") {
    return {
      provider,
      status: "not_configured",
      signature_verification: "disabled",
      statistics: { total_webhooks_24h: 0, processed_webhooks_24h: 0, error_webhooks_24h: 0, last_webhook_at: null },
    };
  }
  const verifying = provider === "twilio" ? Boolean(config.TWILIO_AUTH_TOKEN) : Boolean(config.SENDGRID_WEBHOOK_PUBLIC_KEY || config.SENDGRID_PARSE_PUBLIC_KEY);
  const configured =
    provider === "twilio"
      ? Boolean(config.TWILIO_AUTH_TOKEN || config.TWILIO_ACCOUNT_SID || config.TWILIO_API_KEY_SID)
      : Boolean(config.SENDGRID_API_KEY || config.SENDGRID_WEBHOOK_PUBLIC_KEY || config.SENDGRID_PARSE_PUBLIC_KEY);
  const [row] = await deps.db().run<Row>(sql`
    select count(*)::int as total,
           count(*) filter (where status_code between 200 and 299)::int as processed,
           count(*) filter (where status_code >= 400)::int as errors,
           max(received_at) as last_at
      from webhook_deliveries
     where provider = ${provider} and received_at > now() - interval '24 hours'`);
  return {
    provider,
    status: configured ? "configured" : "not_configured",
    signature_verification: verifying ? "enabled" : "disabled",
    statistics: {
      total_webhooks_24h: Number(row?.total ?? 0),
      processed_webhooks_24h: Number(row?.processed ?? 0),
      error_webhooks_24h: Number(row?.errors ?? 0),
      last_webhook_at: iso(row?.last_at),
    },
  };
}
