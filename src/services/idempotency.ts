// Idempotency-Key (API-CONTRACT §1.8), stored in Postgres for 24 h. The key is taken with one
// insert; the finished 2xx response is stored for byte-exact replay; a 4xx/5xx releases the key.
import { sql } from "drizzle-orm";
import { conflict, validationError } from "../errors";
import { sha256, toHex } from "../http/auth";
import type { Deps } from "../deps";
import type { Row } from "./representation";

const KEY = /^[\x20-\x7e]{1,255}$/;
const LIFETIME = "24 hours";

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

export type Claim = { kind: "new" } | { kind: "replay"; status: number; body: string };

export async function claimKey(deps: Deps, scope: string, key: string, body: unknown, tries = 3): Promise<Claim> {
  const fingerprint = toHex(await sha256(canonicalJson(body)));
  // Insert, or take over an expired key; otherwise return the existing row untouched.
  const [row] = await deps.db().run<Row>(sql`
    with ins as (
      insert into idempotency_keys (scope, key, fingerprint, expires_at)
      values (${scope}, ${key}, ${fingerprint}, now() + interval '${sql.raw(LIFETIME)}')
      on conflict (scope, key) do update
         set fingerprint = excluded.fingerprint, response_status = null, response_body = null,
             created_at = now(), expires_at = excluded.expires_at
       where idempotency_keys.expires_at <= now()
      returning true as claimed)
    select coalesce((select claimed from ins), false) as claimed, k.fingerprint, k.response_status, k.response_body
      from (select 1) one left join idempotency_keys k on k.scope = ${scope} and k.key = ${key}`);
  if (row?.claimed) return { kind: "new" };
  // Not ours and not visible: a concurrent first request committed after our snapshot, or released
  // the key meanwhile. Look again (a fresh statement, a fresh snapshot).
  if (!row || row.fingerprint == null) {
    if (tries <= 1) throw conflict("A request with this Idempotency-Key is still being processed", { "Retry-After": "1" });
    return claimKey(deps, scope, key, body, tries - 1);
  }
  if (row.fingerprint !== fingerprint) throw conflict("Idempotency-Key was already used with a different request body");
  if (row.response_status == null) {
    throw conflict("A request with this Idempotency-Key is still being processed", { "Retry-After": "1" });
  }
  return { kind: "replay", status: Number(row.response_status), body: String(row.response_body) };
}

export async function storeResponse(deps: Deps, scope: string, key: string, status: number, body: string): Promise<void> {
  await deps.db().run(sql`update idempotency_keys set response_status = ${status}, response_body = ${body}
    where scope = ${scope} and key = ${key}`);
}

export async function releaseKey(deps: Deps, scope: string, key: string): Promise<void> {
  await deps.db().run(sql`delete from idempotency_keys where scope = ${scope} and key = ${key} and response_status is null`);
}
