// Body size (413) and content type (415) checks, in the contract's order, before any parsing.
import { AppError, payloadTooLarge, unsupportedMediaType } from "../errors";
import type { AppContext } from "./context";
import type { RoutePolicy } from "./policy";

export const MAX_BODY_BYTES = 262_144;
/** A SendGrid Event Webhook batch: SendGrid posts batches of many events; 5 MB leaves ample room. */
export const MAX_EVENT_BATCH_BYTES = 5 * 1024 * 1024;
/** A SendGrid Inbound Parse post, attachments included: SendGrid's own limit is 30 MB. */
export const MAX_INBOUND_PARSE_BYTES = 30 * 1024 * 1024;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$|^[\w.-]+\/[\w.-]+\+json$/i;

function mediaType(header: string | undefined): string | undefined {
  return header?.split(";")[0]?.trim().toLowerCase() || undefined;
}

export function isJsonContentType(header: string | undefined): boolean {
  const type = mediaType(header);
  return type === undefined || type === "application/json" || JSON_TYPE.test(type);
}

/**
 * Reads the raw body up to `limit` bytes; a longer body is a 413 whatever Content-Length says. With a
 * Content-Length the body is read straight into one buffer of that size (one copy in memory, which
 * matters for a 30 MB Inbound Parse post in a 128 MB isolate); otherwise chunks are joined at the end.
 */
export async function readBodyBytes(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const tooLarge = async () => {
    await reader.cancel().catch(() => undefined);
    return payloadTooLarge(limit);
  };
  if (Number.isInteger(declared) && declared >= 0) {
    const bytes = new Uint8Array(declared);
    let offset = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (offset + value.byteLength > declared) throw await tooLarge(); // more than it said: refuse
      bytes.set(value, offset);
      offset += value.byteLength;
    }
    return offset === declared ? bytes : bytes.subarray(0, offset);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) throw await tooLarge();
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

const bodyError = (message: string) => new AppError(422, "validation_error", message, [{ path: "body", message }]);

/** Postgres text and jsonb cannot hold U+0000: such input is refused here, not as a 5xx later. */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (depth > 64 || value === null || typeof value !== "object") return false;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes("\u0000") || containsNul(item, depth + 1)) return true;
  }
  return false;
}

/**
 * A JSON route's body, in the contract's order: size (413), content type (415), JSON (422 on
 * `body`), NUL characters (422 on `body`). The parsed value is then handed to the route's body
 * schema: the request is presented as the `application/json` it was accepted as (also when it came
 * without a Content-Type, or with a `+json` type Hono's validator does not read), with its JSON
 * already parsed.
 */
export async function enforceBodyRules(c: AppContext, policy: RoutePolicy): Promise<void> {
  if (!policy.jsonBody) return;
  const raw = c.req.raw;
  const bytes = await readBodyBytes(raw, MAX_BODY_BYTES);
  if (!isJsonContentType(c.req.header("content-type"))) throw unsupportedMediaType();
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw bodyError("Request body must be valid JSON");
  }
  if (containsNul(parsed)) throw bodyError("Strings must not contain NUL (U+0000) characters");
  const headers = new Headers(raw.headers);
  headers.set("content-type", "application/json");
  c.req.raw = new Request(raw.url, { method: raw.method, headers, body: bytes, signal: raw.signal });
  c.req.bodyCache.json = Promise.resolve(parsed);
}
