// Idempotency-Key (docs/api.md): a key names one send for 24 h. The key is written by the send's
// own statement (src/services/send.ts), so it exists exactly when its message does; its first
// answer is kept afterwards for a byte-for-byte replay.
import { validationError } from "../errors";
import { sha256, toHex } from "../http/auth";
import type { KeyClaim } from "./send";

const KEY = /^[\x20-\x7e]{1,255}$/;

export function checkIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!KEY.test(header)) {
    throw validationError([{ path: "header.idempotency-key", message: "Idempotency-Key must be 1-255 printable ASCII characters" }]);
  }
  return header;
}

/** JSON with object keys sorted recursively and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The key as stored: scoped to the caller's API key and the route, with the body's fingerprint. */
export async function keyClaim(scope: string, key: string, body: unknown): Promise<KeyClaim> {
  return { scope, key, fingerprint: toHex(await sha256(canonicalJson(body))) };
}
