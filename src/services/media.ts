// Inbound media kept (issue 15 §4). Email attachments (Inbound Parse file parts) and MMS media
// (Twilio's MediaUrlN) are copied into the R2 bucket MEDIA under `messages/{message_id}/{n}`, and
// the message's `attachments` lists `GET /api/v1/messages/{id}/attachments/{n}` for each, in order.
//
// - Inbound Parse: the files are in the request itself; they are written to R2 before the message
//   is stored, so a stored message never points at an object that was not written.
// - MMS: the media lives at Twilio, behind the account's credentials. The message is stored at
//   once with its attachment URLs, and a MediaFetcher Durable Object (one per message) copies each
//   item on its own alarm, retrying failures with backoff (MEDIA_FETCH_RETRY_DELAY doubling, up to
//   MEDIA_FETCH_MAX_ATTEMPTS), every try on the message's timeline as a `media_fetch` event. Until
//   an item is copied, its URL answers 409.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { uuidv7 } from "../ids";

export const mediaKey = (messageId: string, n: number) => `messages/${messageId}/${n}`;

/** The attachment URL of item `n`: absolute under PUBLIC_BASE_URL when it is set, else the path. */
export function attachmentUrl(config: Config, messageId: string, n: number): string {
  const base = (config.PUBLIC_BASE_URL ?? "").replace(/\/+$/, "");
  return `${base}/api/v1/messages/${messageId}/attachments/${n}`;
}

export interface MediaItem {
  n: number;
  /** where the media is fetched from (MMS) */
  url: string;
  /** the type the provider announced; the fetched response's own type wins */
  contentType: string | null;
}

export type FetchOutcome =
  | { outcome: "stored"; bytes: number; contentType: string; httpStatus: number }
  | { outcome: "retry" | "failed"; error: string; httpStatus?: number };

/** Basic auth for Twilio's media URLs, only for Twilio's own host: credentials never go elsewhere. */
function twilioAuthorization(config: Config, url: string): string | null {
  const host = new URL(url).host;
  const twilioHosts = new Set(["api.twilio.com", new URL(config.TWILIO_API_BASE_URL).host]);
  if (!twilioHosts.has(host) || !config.TWILIO_ACCOUNT_SID) return null;
  const [user, secret] =
    config.TWILIO_API_KEY_SID && config.TWILIO_API_KEY_SECRET
      ? [config.TWILIO_API_KEY_SID, config.TWILIO_API_KEY_SECRET]
      : [config.TWILIO_ACCOUNT_SID, config.TWILIO_AUTH_TOKEN];
  return secret ? `Basic ${btoa(`${user}:${secret}`)}` : null;
}

async function readCapped(res: Response, max: number): Promise<Uint8Array | "too_large"> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      return "too_large";
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Fetches one item and writes it to R2. A server error, a timeout or a throttle is worth another
 * try; a refusal (4xx) or an item over MEDIA_MAX_BYTES is not.
 */
export async function copyMedia(config: Config, bucket: R2Bucket, messageId: string, item: MediaItem): Promise<FetchOutcome> {
  // A provider URL that is not http(s) can never be fetched: failed for good, not retried.
  if (!URL.canParse(item.url) || !["http:", "https:"].includes(new URL(item.url).protocol)) return { outcome: "failed", error: "not an http(s) URL" };
  const authorization = twilioAuthorization(config, item.url);
  let res: Response;
  try {
    res = await fetch(item.url, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(config.PROVIDER_TIMEOUT_MS) });
  } catch (error) {
    return { outcome: "retry", error: `fetch failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!res.ok) {
    await res.body?.cancel();
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    return { outcome: retryable ? "retry" : "failed", error: `HTTP ${res.status}`, httpStatus: res.status };
  }
  const declared = Number(res.headers.get("content-length") ?? NaN);
  const tooLarge = { outcome: "failed" as const, error: `larger than MEDIA_MAX_BYTES (${config.MEDIA_MAX_BYTES})`, httpStatus: res.status };
  if (Number.isFinite(declared) && declared > config.MEDIA_MAX_BYTES) {
    await res.body?.cancel();
    return tooLarge;
  }
  let bytes: Uint8Array | "too_large";
  try {
    bytes = res.body ? await readCapped(res, config.MEDIA_MAX_BYTES) : new Uint8Array();
  } catch (error) {
    return { outcome: "retry", error: `read failed: ${error instanceof Error ? error.message : String(error)}`, httpStatus: res.status };
  }
  if (bytes === "too_large") return tooLarge;
  const contentType = res.headers.get("content-type")?.split(";")[0]?.trim() || item.contentType || "application/octet-stream";
  await bucket.put(mediaKey(messageId, item.n), bytes, { httpMetadata: { contentType }, customMetadata: { source: "mms" } });
  return { outcome: "stored", bytes: bytes.byteLength, contentType, httpStatus: res.status };
}

/** A `media_fetch` event's data. */
export function fetchEvent(item: MediaItem, attempt: number, result: FetchOutcome, nextAttemptAt: number | null): Record<string, unknown> {
  const data: Record<string, unknown> = { n: item.n, attempt, outcome: result.outcome };
  if (result.httpStatus !== undefined) data.http_status = result.httpStatus;
  if (result.outcome === "stored") Object.assign(data, { bytes: result.bytes, content_type: result.contentType });
  else data.error = result.error;
  if (result.outcome === "retry" && nextAttemptAt !== null) data.next_attempt_at = new Date(nextAttemptAt).toISOString();
  if (result.outcome === "retry" && nextAttemptAt === null) data.outcome = "failed"; // out of attempts
  return data;
}

export async function recordMediaEvents(db: Database, messageId: string, events: Record<string, unknown>[]): Promise<void> {
  if (events.length === 0) return;
  const rows = sql.join(
    events.map((data) => sql`(${uuidv7()}::uuid, ${messageId}::uuid, 'media_fetch', ${JSON.stringify(data)}::jsonb)`),
    sql`, `,
  );
  await db.run(sql`insert into message_events (id, message_id, type, data) select * from (values ${rows}) as v(id, message_id, type, data)
    where exists (select 1 from messages where id = ${messageId})`);
}

/** Hands an MMS's media to its MediaFetcher; idempotent (a redelivered webhook calls it again). */
export async function startMediaFetch(env: Env, messageId: string, items: MediaItem[]): Promise<void> {
  if (items.length === 0) return;
  await env.MEDIA_FETCHER.getByName(messageId).start(messageId, items);
}

// ---------------------------------------------------------------------------------------------
// Inbound Parse attachments

export interface InboundFile {
  filename: string;
  contentType: string;
  content: Blob;
}

/**
 * Writes an email's attachments to R2 under the id its message will have; the ones over
 * MEDIA_MAX_BYTES are left out and named in the returned `skipped`.
 */
export async function storeInboundFiles(
  config: Config,
  bucket: R2Bucket,
  messageId: string,
  files: InboundFile[],
): Promise<{ urls: string[]; skipped: { filename: string; bytes: number; reason: string }[]; keys: string[] }> {
  const urls: string[] = [];
  const keys: string[] = [];
  const skipped: { filename: string; bytes: number; reason: string }[] = [];
  for (const file of files) {
    if (file.content.size > config.MEDIA_MAX_BYTES) {
      skipped.push({ filename: file.filename, bytes: file.content.size, reason: `larger than MEDIA_MAX_BYTES (${config.MEDIA_MAX_BYTES})` });
      continue;
    }
    const n = urls.length;
    const key = mediaKey(messageId, n);
    await bucket.put(key, file.content, { httpMetadata: { contentType: file.contentType }, customMetadata: { source: "email", filename: file.filename } });
    keys.push(key);
    urls.push(attachmentUrl(config, messageId, n));
  }
  return { urls, skipped, keys };
}
