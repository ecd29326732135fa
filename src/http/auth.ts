// Bearer API keys (API-CONTRACT §1.3). Keys are compared as SHA-256 digests in constant time, so
// neither the key's length nor a matching prefix shows in the timing.
import type { Config } from "../config";
import { unauthorized } from "../errors";
import type { AppContext } from "./context";

const digests = new WeakMap<Config, Promise<Uint8Array[]>>();

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function configuredDigests(config: Config): Promise<Uint8Array[]> {
  let hit = digests.get(config);
  if (!hit) {
    hit = Promise.all(config.API_KEYS.map(sha256));
    digests.set(config, hit);
  }
  return hit;
}

export async function authenticate(c: AppContext): Promise<void> {
  const config = c.get("config");
  if (!config.authRequired) return;
  if (config.API_KEYS.length === 0) throw unauthorized("API keys are not configured");
  const key = presentedKey(c.req.header("authorization"));
  if (!key) throw unauthorized("Missing or invalid API key");
  const digest = await sha256(key);
  let valid = false;
  for (const candidate of await configuredDigests(config)) {
    // Check every key (no early exit) so the time does not depend on which one matched.
    if (crypto.subtle.timingSafeEqual(candidate, digest)) valid = true;
  }
  if (!valid) throw unauthorized("Missing or invalid API key");
  c.set("apiKeyHash", toHex(digest));
}

/** Whether a bearer header carries `token`, compared as digests in constant time. */
export async function tokenMatches(header: string | undefined, token: string): Promise<boolean> {
  const presented = presentedKey(header);
  if (!presented) return false;
  return crypto.subtle.timingSafeEqual(await sha256(presented), await sha256(token));
}

/** The key of a well-formed `Authorization: Bearer <key>` header, else undefined. */
export function presentedKey(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer[ ]+(\S+)\s*$/i);
  return match?.[1];
}
