// Every inbound is kept: what a provider sends is stored even when Postgres could not hold it as
// sent. Postgres text and jsonb refuse U+0000, and jsonb refuses a lone UTF-16 surrogate (which
// JSON.stringify writes as an escape); both are replaced with U+FFFD, and the paths of the fields
// that changed are recorded so that the replacement is never silent.

// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** How deep objects are walked; deeper values are replaced whole (a provider never nests this far). */
const MAX_DEPTH = 32;

export function storableText(text: string): string {
  return text.replace(UNSTORABLE, "\uFFFD");
}

/**
 * A copy of `value` that Postgres can store, and the paths (e.g. `body`, `metadata.subject`) of what
 * had to change. Object keys are cleaned too.
 */
export function storable<T>(value: T, path: string, changed: string[], depth = 0): T {
  if (typeof value === "string") {
    const clean = storableText(value);
    if (clean !== value) changed.push(path);
    return clean as T;
  }
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) {
    changed.push(path);
    return "[nested too deep]" as T;
  }
  if (Array.isArray(value)) return value.map((item, i) => storable(item, `${path}.${i}`, changed, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const cleanKey = storableText(key);
    if (cleanKey !== key) changed.push(`${path}.${cleanKey}`);
    out[cleanKey] = storable(item, `${path}.${cleanKey}`, changed, depth + 1);
  }
  return out as T;
}

/** An inbound message made storable; `metadata.sanitized` lists the fields whose text was replaced. */
export function storableInbound<T extends { metadata: Record<string, unknown> }>(input: T): T {
  const changed: string[] = [];
  const clean = storable(input, "", changed);
  if (changed.length === 0) return input;
  return { ...clean, metadata: { ...clean.metadata, sanitized: [...new Set(changed.map((p) => p.replace(/^\./, "")))] } };
}
