// Shared request-part rules: UUIDs, pagination, metadata, and the issue list that becomes the
// 422 envelope (API-CONTRACT §1.5).
import { validationError, type FieldIssue } from "../errors";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const METADATA_MAX_BYTES = 8192;

export class Issues {
  readonly list: FieldIssue[] = [];
  add(path: string, message: string) {
    this.list.push({ path, message });
  }
  get empty() {
    return this.list.length === 0;
  }
  throwIfAny() {
    if (this.list.length) throw validationError(this.list);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function requireObjectBody(body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) throw validationError([{ path: "body", message: "Request body must be a JSON object" }]);
  return body;
}

export function has(body: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(body, key) && body[key] !== undefined;
}

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/** Validates metadata (null/absent → {}); adds its issue and returns undefined when bad. */
export function checkMetadata(value: unknown, issues: Issues, path = "body.metadata"): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) {
    issues.add(path, "Metadata must be a JSON object");
    return undefined;
  }
  if (utf8Length(JSON.stringify(value)) > METADATA_MAX_BYTES) {
    issues.add(path, `Metadata must be at most ${METADATA_MAX_BYTES} bytes`);
    return undefined;
  }
  return value;
}

export function checkUuidParam(value: string, name: string): string {
  if (!UUID.test(value)) throw validationError([{ path: `path.${name}`, message: "Invalid UUID" }]);
  return value.toLowerCase();
}

export interface Page {
  limit: number;
  offset: number;
}

const INTEGER = /^-?\d+$/;

/** limit/offset from the query string with the route's range and default. */
export function parsePage(query: Record<string, string | undefined>, issues: Issues, max: number, fallback: number): Page {
  const page: Page = { limit: fallback, offset: 0 };
  const limit = query.limit;
  if (limit !== undefined) {
    const n = INTEGER.test(limit.trim()) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= max)) issues.add("query.limit", `limit must be an integer between 1 and ${max}`);
    else page.limit = n;
  }
  const offset = query.offset;
  if (offset !== undefined) {
    const n = INTEGER.test(offset.trim()) ? Number(offset) : NaN;
    if (!(n >= 0 && Number.isSafeInteger(n))) issues.add("query.offset", "offset must be an integer of at least 0");
    else page.offset = n;
  }
  return page;
}

export function enumQuery<T extends string>(query: Record<string, string | undefined>, key: string, values: readonly T[], issues: Issues): T | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (!(values as readonly string[]).includes(value)) {
    issues.add(`query.${key}`, `${key} must be one of: ${values.join(", ")}`);
    return undefined;
  }
  return value as T;
}

export function uuidQuery(query: Record<string, string | undefined>, key: string, issues: Issues): string | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (!UUID.test(value)) {
    issues.add(`query.${key}`, "Invalid UUID");
    return undefined;
  }
  return value.toLowerCase();
}
