// Provider webhook signatures (docs/api.md), WebCrypto only. Both are checked over the
// request exactly as it arrived (raw URL string, raw body bytes), before anything is parsed or
// stored (docs/architecture.md invariant 9): a re-serialised body or a re-encoded URL must not verify.
import { toHex } from "../http/auth";

const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Twilio: base64(HMAC-SHA1(auth token, url + sorted name/value pairs))

/**
 * Path and query of a request URL, byte for byte as received. `new URL()` would normalise
 * (percent-encoding, dot segments), and Twilio signed the string it called, so slice the raw text.
 */
export function rawPathAndQuery(requestUrl: string): { origin: string; path: string; query: string | null } {
  const withoutFragment = requestUrl.split("#", 1)[0]!;
  const schemeEnd = withoutFragment.indexOf("://");
  const authorityStart = schemeEnd >= 0 ? schemeEnd + 3 : 0;
  let pathStart = withoutFragment.indexOf("/", authorityStart);
  const queryStart = withoutFragment.indexOf("?", authorityStart);
  if (pathStart < 0 || (queryStart >= 0 && queryStart < pathStart)) pathStart = queryStart >= 0 ? queryStart : withoutFragment.length;
  const origin = withoutFragment.slice(0, pathStart);
  const rest = withoutFragment.slice(pathStart);
  const q = rest.indexOf("?");
  if (q < 0) return { origin, path: rest || "/", query: null };
  return { origin, path: rest.slice(0, q) || "/", query: rest.slice(q + 1) };
}

/**
 * The URLs Twilio may have signed for this request: PUBLIC_BASE_URL (or the request's own origin)
 * + path + raw query, each with and without the scheme's default port (Twilio signs whatever URL it
 * was configured with, and its own validator tries both), and each with the query's `'` as Twilio
 * sent it: the Workers runtime hands us `%27` for a raw `'` (the URL standard escapes it in queries).
 */
export function twilioSignedUrls(requestUrl: string, publicBaseUrl: string | undefined): string[] {
  const { origin, path, query } = rawPathAndQuery(requestUrl);
  const base = (publicBaseUrl ?? origin).replace(/\/+$/, "");
  const queries = query === null ? [""] : [`?${query}`, `?${query.replace(/%27/g, "'")}`];
  const bases = [base];
  const authority = base.match(/^(https?):\/\/([^/?#]+?)(?::(\d+))?(\/.*)?$/i);
  if (authority && !authority[2]!.endsWith("]")) {
    const [, scheme, host, port, basePath = ""] = authority;
    const defaultPort = scheme!.toLowerCase() === "https" ? "443" : "80";
    if (port === undefined) bases.push(`${scheme}://${host}:${defaultPort}${basePath}`);
    else if (port === defaultPort) bases.push(`${scheme}://${host}${basePath}`);
  }
  return [...new Set(bases.flatMap((b) => queries.map((q) => b + path + q)))];
}

/** Form parameters as Twilio's validator sees them: name order by code unit, each distinct value sorted. */
export function twilioSignatureString(url: string, params: Iterable<[string, string]>): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    let values = byName.get(name);
    if (!values) byName.set(name, (values = new Set()));
    values.add(value);
  }
  let data = url;
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...byName.get(name)!].sort()) data += name + value;
  }
  return data;
}

export async function twilioSignature(authToken: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(authToken), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(data)));
  return bytesToBase64(mac);
}

/** Equal-length byte compare without an early exit; a length difference is simply unequal. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.byteLength !== y.byteLength) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export interface TwilioRequest {
  url: string;
  signature: string | undefined;
  bodyKind: "form" | "json";
  body: Uint8Array;
}

/**
 *: form bodies sign url + params; JSON bodies sign the url alone and carry the body's SHA-256
 * in the `bodySHA256` query parameter, which must match the raw bytes.
 */
export async function verifyTwilio(authToken: string, publicBaseUrl: string | undefined, request: TwilioRequest): Promise<boolean> {
  const provided = request.signature;
  if (!provided) return false;
  let params: [string, string][] = [];
  if (request.bodyKind === "form") {
    params = [...new URLSearchParams(new TextDecoder().decode(request.body))];
  } else {
    const { query } = rawPathAndQuery(request.url);
    const claimed = query === null ? null : new URLSearchParams(query).get("bodySHA256");
    if (!claimed || !constantTimeEqual(claimed, await sha256Hex(request.body))) return false;
  }
  let valid = false;
  for (const url of twilioSignedUrls(request.url, publicBaseUrl)) {
    // Evaluate every candidate so the time does not say which one matched.
    if (constantTimeEqual(await twilioSignature(authToken, twilioSignatureString(url, params)), provided.trim())) valid = true;
  }
  return valid;
}

// ---------------------------------------------------------------------------------------------
// SendGrid: ECDSA P-256 / SHA-256 over UTF-8(timestamp) ‖ raw body

export class SignatureKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureKeyError";
  }
}

function base64ToBytes(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length === 0) return null;
  try {
    const binary = atob(clean);
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

const keyCache = new Map<string, Promise<CryptoKey>>();

/** SPKI (base64 DER, PEM armour allowed) → a verify key. Cached: the key is per deployment. */
export function importSendgridKey(publicKey: string): Promise<CryptoKey> {
  let hit = keyCache.get(publicKey);
  if (!hit) {
    const der = base64ToBytes(publicKey.replace(/-----(BEGIN|END)[^-]*-----/g, ""));
    hit = der
      ? crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]).catch((error: unknown) => {
          keyCache.delete(publicKey);
          throw new SignatureKeyError(`SendGrid public key does not import: ${error instanceof Error ? error.message : String(error)}`);
        })
      : Promise.reject(new SignatureKeyError("SendGrid public key is not base64"));
    if (der) keyCache.set(publicKey, hit);
  }
  return hit;
}

/** One DER length field at `at`; returns [length, next offset] or null. Only the forms DER allows. */
function derLength(bytes: Uint8Array, at: number): [number, number] | null {
  const first = bytes[at];
  if (first === undefined) return null;
  if (first < 0x80) return [first, at + 1];
  if (first === 0x81) {
    const value = bytes[at + 1];
    return value === undefined || value < 0x80 ? null : [value, at + 2];
  }
  return null; // an ECDSA P-256 signature is never longer than 72 bytes
}

function derInteger(bytes: Uint8Array, at: number): [Uint8Array, number] | null {
  if (bytes[at] !== 0x02) return null;
  const length = derLength(bytes, at + 1);
  if (!length || length[0] === 0) return null;
  const [size, start] = length;
  if (start + size > bytes.length) return null;
  let value = bytes.subarray(start, start + size);
  while (value.length > 1 && value[0] === 0) value = value.subarray(1);
  if (value.length > 32) return null;
  return [value, start + size];
}

/** DER SEQUENCE{INTEGER r, INTEGER s} → the 64-byte r ‖ s WebCrypto verifies; null if not such DER. */
export function derToRaw(signature: Uint8Array): Uint8Array | null {
  if (signature[0] !== 0x30) return null;
  const length = derLength(signature, 1);
  if (!length || length[1] + length[0] !== signature.length) return null;
  const r = derInteger(signature, length[1]);
  if (!r) return null;
  const s = derInteger(signature, r[1]);
  if (!s || s[1] !== signature.length) return null;
  const raw = new Uint8Array(64);
  raw.set(r[0], 32 - r[0].length);
  raw.set(s[0], 64 - s[0].length);
  return raw;
}

export interface SendgridRequest {
  signature: string | undefined;
  timestamp: string | undefined;
  body: Uint8Array;
}

/**
 * Missing headers or an undecodable signature are simply unverified (403); a key that does
 * not import is a deployment fault and throws SignatureKeyError (500, so SendGrid retries later).
 */
export async function verifySendgrid(publicKey: string, request: SendgridRequest): Promise<boolean> {
  if (!request.signature || request.timestamp === undefined) return false;
  const key = await importSendgridKey(publicKey);
  const decoded = base64ToBytes(request.signature);
  if (!decoded) return false;
  // SendGrid sends DER; a bare 64-byte value is already r ‖ s. A 64-byte DER encoding is possible,
  // so a value that parses both ways is tried both ways.
  const candidates: Uint8Array[] = [];
  const fromDer = derToRaw(decoded);
  if (fromDer) candidates.push(fromDer);
  if (decoded.length === 64) candidates.push(decoded);
  if (candidates.length === 0) return false;
  const stamp = encoder.encode(request.timestamp);
  const payload = new Uint8Array(stamp.length + request.body.length);
  payload.set(stamp, 0);
  payload.set(request.body, stamp.length);
  for (const rs of candidates) {
    if (await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, rs, payload)) return true;
  }
  return false;
}
