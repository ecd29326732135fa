// What the request schemas share: UUIDs, pagination, metadata, the phone region, and how a failed
// validation becomes the contract's 422 envelope (docs/api.md).
import { z, type Hook } from "@hono/zod-openapi";
import { getContext } from "hono/context-storage";
import { validationError, type FieldIssue } from "../errors";
import type { AppEnv } from "../http/context";

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const METADATA_MAX_BYTES = 8192;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

export interface Page {
  limit: number;
  offset: number;
}

/**
 * The region in which phone numbers written without `+` are read. Schemas are built once, before
 * any configuration is known, so they ask for it while they parse; a route's schemas read the
 * request's configuration through Hono's context storage.
 */
export type Region = () => string;
export const requestRegion: Region = () => getContext<AppEnv>().var.config.DEFAULT_PHONE_REGION;

// ---------------------------------------------------------------------------------------------
// From zod's issues to the envelope's details

const PARTS: Record<string, string> = { json: "body", form: "body", query: "query", param: "path", header: "header", cookie: "cookie" };

/** `body.to`, `query.limit`, `path.message_id`, `header.idempotency-key` (header names are case-insensitive). */
function fieldIssues(target: string, error: z.ZodError): FieldIssue[] {
  const part = PARTS[target] ?? target;
  return error.issues.map((issue) => {
    const path = [part, ...issue.path.map(String)].join(".");
    return { path: part === "header" ? path.toLowerCase() : path, message: issue.message };
  });
}

/** The app's defaultHook: a request part that fails its route's schema answers 422 in the envelope. */
export const rejectInvalid: Hook<unknown, AppEnv, string, void> = (result) => {
  if (!result.success) throw validationError(fieldIssues(result.target, result.error));
};

/** Validates outside a route (the fuzz tests): the value, or the same AppError a route would throw. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, target = "json"): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(fieldIssues(target, result.error));
  return result.data;
}

/**
 * Keeps the issues in the order of the request's fields, whichever check found them: a rule that
 * spans fields runs after the fields' own rules, but its issue belongs where its field is.
 */
export function inFieldOrder(issues: { path?: PropertyKey[] }[], fields: readonly string[]) {
  const rank = (issue: { path?: PropertyKey[] }) => {
    const index = fields.indexOf(String(issue.path?.[0] ?? ""));
    return index === -1 ? fields.length : index;
  };
  issues.sort((a, b) => rank(a) - rank(b));
}

/**
 * A body is dispatched on one of its fields. When that cannot be done (the field is missing or
 * unknown), `fallback` checks the request instead, with every rule that does not need the
 * missing part, and the request fails with its issues; `documented` is the schema of a request that
 * can be dispatched, and the document's.
 */
export function dispatched<S extends z.ZodType>(fallback: (input: unknown) => z.ZodType | undefined, documented: S) {
  return z.preprocess((input, ctx) => {
    const schema = fallback(input);
    if (schema) for (const issue of schema.safeParse(input).error?.issues ?? []) ctx.addIssue({ ...issue, code: "custom" });
    return input;
  }, documented);
}

/** Object-level rules that must run even when a field failed (the details list every problem). */
export const ALWAYS = { when: () => true } as const;

// ---------------------------------------------------------------------------------------------
// Field schemas

const lower = (value: string) => value.toLowerCase();

const Uuid = z.guid({ error: "Invalid UUID" }).openapi({ example: "0190a5c2-7b1e-7c3d-9f00-3a1b2c3d4e5f" });

/** A UUID path or query value, lower-cased. */
export const uuidValue = () => Uuid.transform(lower);

/** JSON object of at most 8192 bytes compact. */
export const Metadata = z
  .record(z.string(), z.unknown(), { error: "Metadata must be a JSON object" })
  .refine((value) => utf8Length(JSON.stringify(value)) <= METADATA_MAX_BYTES, `Metadata must be at most ${METADATA_MAX_BYTES} bytes`)
  .openapi({
    description: `Any JSON object, at most ${METADATA_MAX_BYTES} bytes as compact JSON.`,
    example: { order_id: "A-1042" },
  });

/**
 * At most `max` characters as JSON Schema counts them (code points). zod's `.max()` counts UTF-16
 * units, so the rule is a refinement and `maxLength` is stated for the document.
 */
export function maxChars<S extends z.ZodString>(schema: S, max: number, message: string) {
  return schema.refine((text) => [...text].length <= max, message).openapi({ maxLength: max });
}

/**
 * An RFC 3339 date-time with its offset (`Z` or `±hh:mm`), seconds required: a time without an
 * offset would be read in some server's zone. Parsed to epoch ms.
 */
export function rfc3339(name: string) {
  const message = `${name} must be an RFC 3339 date-time with a time zone offset, like 2025-01-15T10:30:00Z`;
  return z
    .string({ error: message })
    .pipe(z.iso.datetime({ offset: true, error: message }))
    .transform((value) => Date.parse(value))
    .openapi({ format: "date-time", example: "2025-01-15T10:30:00Z" });
}

export function oneOf<const T extends readonly [string, ...string[]]>(name: string, values: T) {
  return z.enum(values, { error: `${name} must be one of: ${values.join(", ")}` });
}

// ---------------------------------------------------------------------------------------------
// Query strings

const INTEGER = /^-?\d+$/;
const integerText = (value: unknown) => (typeof value === "string" && INTEGER.test(value.trim()) ? Number(value) : value);

/** limit and offset with the route's range and default. */
export function pageQuery(max: number, fallback: number) {
  const limitMessage = `limit must be an integer between 1 and ${max}`;
  const offsetMessage = "offset must be an integer of at least 0";
  return {
    limit: z
      .preprocess(integerText, z.int({ error: limitMessage }).min(1, limitMessage).max(max, limitMessage))
      .default(fallback)
      .openapi({ description: `Page size, 1-${max}.`, example: Math.min(20, max) }),
    offset: z
      .preprocess(integerText, z.int({ error: offsetMessage }).min(0, offsetMessage))
      .default(0)
      .openapi({ description: "Rows to skip.", example: 0 }),
  };
}

export function booleanQuery(name: string) {
  return z
    .enum(["true", "false"], { error: `${name} must be true or false` })
    .optional()
    .transform((value) => value === "true");
}

/** A repeated query parameter counts once, with its first value. */
const firstValues = (query: unknown) =>
  isPlainObject(query) ? Object.fromEntries(Object.entries(query).map(([key, value]) => [key, Array.isArray(value) ? value[0] : value])) : query;

export function querySchema<T extends z.ZodRawShape>(shape: T) {
  // A preprocess is a pipe from a transform; zod's own type for it does not say so.
  return z.preprocess(firstValues, z.object(shape)) as unknown as z.ZodPipe<z.ZodTransform<unknown, unknown>, z.ZodObject<T>>;
}
