// A webhook delivery from arrival to effect, in the contract's order (§1.2, §6): body size (413),
// content type (415), signature over the raw bytes (403), parsing (400), then the service. Every
// delivery is counted in webhook_requests_total, and those that passed the signature check are
// logged for the 24-hour statistics (§6.5).
import type { Config } from "../config";
import { AppError, DependencyError, unsupportedMediaType } from "../errors";
import { MAX_BODY_BYTES, MAX_EVENT_BATCH_BYTES, MAX_INBOUND_PARSE_BYTES, readBodyBytes } from "../http/body";
import { runAfterResponse, type AppContext } from "../http/context";
import { errorFields, log } from "../log";
import { nudgeProvider } from "../queue/doorbell";
import { PROVIDER_TYPES } from "../services/circuits";
import { recordWebhook } from "../services/metrics";
import { ringWebhookWorker } from "../services/outbound-webhooks";
import { receiveInbound, type InboundResult } from "../services/inbound";
import { applySendgridEvents, applyTwilioStatus, type CallbackResult, type EventsResult } from "../services/status-reports";
import { recordDelivery } from "../services/webhook-deliveries";
import { attachmentUrl, startMediaFetch, storeInboundFiles } from "../services/media";
import { uuidv7 } from "../ids";
import { parseInboundParse, parseSendgridJson, parseTwilioForm, parseTwilioJson, type InboundInput, type InboundMedia, type WebhookProvider } from "./parsers";
import { storable, storableInbound } from "./sanitize";
import { verifySendgrid, verifyTwilio } from "./signatures";

export type WebhookResult = InboundResult | CallbackResult | EventsResult;

export const invalidSignature = () => new AppError(403, "forbidden", "Invalid webhook signature");

function mediaType(header: string | undefined): string | undefined {
  return header?.split(";")[0]?.trim().toLowerCase() || undefined;
}

interface Progress {
  /** what the delivery turned out to be; `unknown` until it parsed */
  kind: string;
  /** passed the signature check (or none was required): counts in the statistics */
  verified: boolean;
}

function statusOf(error: unknown): number {
  if (error instanceof AppError) return error.status;
  if (error instanceof DependencyError) return 503;
  return 500;
}

function isDuplicate(result: WebhookResult): boolean {
  if (result.kind === "events") return result.received > 0 && result.duplicates === result.received;
  return result.status === "duplicate";
}

async function logDelivery(c: AppContext, provider: WebhookProvider, kind: string, statusCode: number) {
  try {
    await recordDelivery(c.get("deps"), provider, kind, statusCode);
  } catch (error) {
    // Statistics are best effort: the delivery's own outcome stands.
    log("warn", "webhook_delivery_not_logged", { request_id: c.get("requestId"), provider, ...errorFields(error) });
  }
}

async function accounted(c: AppContext, provider: WebhookProvider, run: (progress: Progress) => Promise<WebhookResult>): Promise<WebhookResult> {
  const progress: Progress = { kind: "unknown", verified: false };
  try {
    const result = await run(progress);
    recordWebhook(provider, result.kind, isDuplicate(result) ? "duplicate" : "processed");
    await logDelivery(c, provider, result.kind, 200);
    // A delivery the provider made (signed, when signatures are on) shows it is up: a shard that
    // paused it probes now rather than at its next interval.
    runAfterResponse(
      c,
      nudgeProvider(c.env, c.get("config"), PROVIDER_TYPES[provider], provider).catch((error: unknown) =>
        log("warn", "provider_nudge_failed", { provider, ...errorFields(error) }),
      ),
    );
    // Status changes and inbound messages may have written status webhooks: their worker delivers them.
    if (!isDuplicate(result)) runAfterResponse(c, ringWebhookWorker(c.env));
    return result;
  } catch (error) {
    const status = statusOf(error);
    recordWebhook(provider, progress.kind, status < 500 ? "rejected" : "error");
    // With the database down the log write would only wait for the same failure.
    const databaseDown = error instanceof DependencyError && error.dependency === "database";
    if (progress.verified && !databaseDown) await logDelivery(c, provider, progress.kind, status);
    throw error;
  }
}

/**
 * Whether a delivery must carry a valid signature: when its secret is configured, and always
 * outside development, where a missing secret refuses every delivery instead of accepting forgeries
 * (fail closed, like API keys).
 */
function mustVerify(config: Config, setting: "TWILIO_AUTH_TOKEN" | "SENDGRID_WEBHOOK_PUBLIC_KEY" | "SENDGRID_PARSE_PUBLIC_KEY"): boolean {
  if (config[setting]) return true;
  if (config.ENVIRONMENT === "development") return false;
  log("warn", "webhook_refused_unverifiable", { setting, reason: `${setting} is not set outside development` });
  throw invalidSignature();
}

/** §6.2: form-encoded (§9.1/9.2) or the JSON test format (§9.3), signed per §9.4. */
export function intakeTwilio(c: AppContext): Promise<WebhookResult> {
  return accounted(c, "twilio", async (progress) => {
    const config = c.get("config");
    const type = mediaType(c.req.header("content-type"));
    const bytes = await readBodyBytes(c.req.raw, MAX_BODY_BYTES);
    const bodyKind = type === "application/x-www-form-urlencoded" ? "form" : type === "application/json" ? "json" : null;
    if (!bodyKind) throw unsupportedMediaType("Content-Type must be application/x-www-form-urlencoded or application/json");
    if (mustVerify(config, "TWILIO_AUTH_TOKEN")) {
      const valid = await verifyTwilio(config.TWILIO_AUTH_TOKEN!, config.PUBLIC_BASE_URL, {
        url: c.req.raw.url,
        signature: c.req.header("x-twilio-signature"),
        bodyKind,
        body: bytes,
      });
      if (!valid) throw invalidSignature();
    }
    progress.verified = true;
    const region = config.DEFAULT_PHONE_REGION;
    const payload = bodyKind === "form" ? parseTwilioForm(bytes, c.req.query("message_id") || null, region) : await parseTwilioJson(bytes, region);
    progress.kind = payload.kind;
    const deps = c.get("deps");
    return payload.kind === "inbound_message"
      ? receiveWithMedia(c, payload.input, payload.media)
      : applyTwilioStatus(deps, storable(payload.input, "status", []));
  });
}

/** §6.3: Event Webhook arrays (§9.5), the JSON test format (§9.7) or Inbound Parse (§9.6), signed per §9.8. */
export function intakeSendgrid(c: AppContext): Promise<WebhookResult> {
  return accounted(c, "sendgrid", async (progress) => {
    const config = c.get("config");
    const contentType = c.req.header("content-type");
    const type = mediaType(contentType);
    const multipart = type === "multipart/form-data";
    // SendGrid's own limits: an Inbound Parse post (attachments included) up to 30 MB, an Event
    // Webhook batch of several MB. Refusing a larger one would have SendGrid retry it forever.
    const bytes = await readBodyBytes(c.req.raw, multipart ? MAX_INBOUND_PARSE_BYTES : MAX_EVENT_BATCH_BYTES);
    if (!multipart && type !== "application/json") throw unsupportedMediaType("Content-Type must be application/json or multipart/form-data");
    const setting = multipart ? "SENDGRID_PARSE_PUBLIC_KEY" : "SENDGRID_WEBHOOK_PUBLIC_KEY";
    if (mustVerify(config, setting)) {
      const valid = await verifySendgrid(config[setting]!, {
        signature: c.req.header("x-twilio-email-event-webhook-signature"),
        timestamp: c.req.header("x-twilio-email-event-webhook-timestamp"),
        body: bytes,
      });
      if (!valid) throw invalidSignature();
    }
    progress.verified = true;
    const payload = multipart ? await parseInboundParse(bytes, contentType!) : await parseSendgridJson(bytes);
    progress.kind = payload.kind;
    const deps = c.get("deps");
    return payload.kind === "events" ? applySendgridEvents(deps, storable(payload.elements, "events", [])) : receiveWithMedia(c, payload.input, payload.media);
  });
}

/**
 * An inbound message with its media kept (issue 15 §4): email attachments go to R2 before the
 * message is stored; MMS media is handed to the message's MediaFetcher after, and again on a
 * redelivery (idempotent), so that an answer of 5xx after the commit loses no media either.
 */
async function receiveWithMedia(c: AppContext, input: InboundInput, media: InboundMedia | undefined): Promise<InboundResult> {
  const config = c.get("config");
  const id = uuidv7();
  const urls = media?.urls ?? [];
  const files = media?.files ?? [];
  let clean = storableInbound(input);
  let written: string[] = [];
  if (urls.length > 0) {
    clean = { ...clean, attachments: urls.map((_, n) => attachmentUrl(config, id, n)) };
  } else if (files.length > 0) {
    const stored = await storeInboundFiles(config, c.env.MEDIA, id, files);
    written = stored.keys;
    clean = { ...clean, attachments: stored.urls, metadata: stored.skipped.length > 0 ? { ...clean.metadata, attachments_skipped: stored.skipped } : clean.metadata };
  }
  const result = await receiveInbound(c.get("deps"), clean, id);
  if (result.status === "duplicate" && written.length > 0) {
    // The first delivery's copies stand; this one's were written under an id that was not used.
    runAfterResponse(c, c.env.MEDIA.delete(written).catch((error: unknown) => log("warn", "media_orphans_not_deleted", { keys: written.length, ...errorFields(error) })));
  }
  if (urls.length > 0 && result.message_id) {
    await startMediaFetch(c.env, result.message_id, urls.map((u, n) => ({ n, url: u.url, contentType: u.contentType })));
  }
  return result;
}

export const INTAKES = new Map<string, (c: AppContext) => Promise<WebhookResult>>([
  ["twilio", intakeTwilio],
  ["sendgrid", intakeSendgrid],
]);
