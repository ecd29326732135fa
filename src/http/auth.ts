// Bearer API keys with scopes. API_KEYS holds raw keys (every scope, `admin`) and scoped entries
// NAME:SCOPES:SHA256HEX, so that a secret store can hold digests only. The presented key is hashed
// and compared with every configured digest in constant time (no early exit), so neither its length,
// a matching prefix nor which entry matched shows in the timing. A key is known by its NAME in logs,
// rate-limit buckets and message timelines, never by the key.
import type { Config } from "../config";
import { AppError, unauthorized } from "../errors";
import { log } from "../log";
import type { AppContext } from "./context";
import { grants, isScope, SCOPED_ENTRY, type Scope } from "./scopes";

export interface ApiKey {
  name: string;
  scopes: Scope[];
  digest: Uint8Array;
}

const keyring = new WeakMap<Config, Promise<ApiKey[]>>();

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(hex.match(/../g)!.map((pair) => parseInt(pair, 16)));
}

/** The configured keys (config.ts has already refused malformed entries). */
export async function parseApiKeys(entries: string[]): Promise<ApiKey[]> {
  return Promise.all(
    entries.map(async (entry): Promise<ApiKey> => {
      const scoped = SCOPED_ENTRY.exec(entry);
      if (scoped) return { name: scoped[1]!, scopes: scoped[2]!.split("+").filter(isScope), digest: fromHex(scoped[3]!) };
      const digest = await sha256(entry);
      // A raw key is named by a prefix of its digest: stable across reorderings, and not the key.
      return { name: `key-${toHex(digest).slice(0, 8)}`, scopes: ["admin"], digest };
    }),
  );
}

function configuredKeys(config: Config): Promise<ApiKey[]> {
  let hit = keyring.get(config);
  if (!hit) {
    hit = parseApiKeys(config.API_KEYS);
    keyring.set(config, hit);
  }
  return hit;
}

/** The configured key the request presents, else null; looked up once per request. */
export async function identify(c: AppContext): Promise<ApiKey | null> {
  const known = c.get("apiKey");
  if (known !== undefined) return known;
  const presented = presentedKey(c.req.header("authorization"));
  let match: ApiKey | null = null;
  if (presented) {
    const digest = await sha256(presented);
    for (const candidate of await configuredKeys(c.get("config"))) {
      // Check every key (no early exit) so the time does not depend on which one matched.
      if (crypto.subtle.timingSafeEqual(candidate.digest, digest) && !match) match = candidate;
    }
  }
  c.set("apiKey", match);
  return match;
}

export const insufficientScope = (required: Scope) =>
  new AppError(403, "insufficient_scope", `This API key lacks the ${required} scope`, { required_scope: required });

/** 401 without a valid key, 403 when the key lacks `required` (admin grants every scope). */
export async function authenticate(c: AppContext, required: Scope): Promise<void> {
  const config = c.get("config");
  if (!config.authRequired) return;
  if (config.API_KEYS.length === 0) throw unauthorized("API keys are not configured");
  const key = await identify(c);
  if (!key) throw unauthorized("Missing or invalid API key");
  c.set("apiKeyHash", toHex(key.digest));
  c.set("apiKeyName", key.name);
  if (!grants(key.scopes, required)) {
    // Who tried what: a key used beyond its scopes is worth an operator's look (log() adds api_key).
    log("warn", "insufficient_scope", { request_id: c.get("requestId"), method: c.req.method, route: c.get("route"), required_scope: required });
    throw insufficientScope(required);
  }
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
