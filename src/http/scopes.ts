// API key scopes. A route declares the one scope it needs (defineRoute's `scope`); a key grants a set.
// `admin` grants everything, and `ops` grants `read` too: an operator who redrives a dead letter has
// to find the message and read its timeline (the console's message search), while a `send` key still
// cannot list anyone's messages and a `read` key cannot touch queues.
export const SCOPES = ["send", "read", "ops", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** What each scope grants besides itself. */
const IMPLIES: Record<Scope, readonly Scope[]> = {
  send: [],
  read: [],
  ops: ["read"],
  admin: ["send", "read", "ops"],
};

export function grants(held: Iterable<Scope>, required: Scope): boolean {
  for (const scope of held) {
    if (scope === required || IMPLIES[scope].includes(required)) return true;
  }
  return false;
}

export const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

/** NAME:SCOPES:SHA256HEX, scopes joined by `+`, the lowercase hex SHA-256 of the key. */
export const SCOPED_ENTRY = /^([A-Za-z0-9._-]{1,64}):([a-z+]+):([0-9a-f]{64})$/;

/** Why an API_KEYS entry is unusable, or null. An entry without a colon is a raw admin key. */
export function entryProblem(entry: string): string | null {
  if (!entry.includes(":")) return null;
  const match = SCOPED_ENTRY.exec(entry);
  if (!match) return "a scoped API_KEYS entry must be NAME:SCOPES:SHA256HEX (name of A-Za-z0-9._-, scopes joined by +, 64 lowercase hex digits)";
  const scopes = match[2]!.split("+");
  const unknown = scopes.filter((s) => !isScope(s));
  if (unknown.length || scopes.length === 0) return `API key ${match[1]} has unknown scopes: ${unknown.join(", ") || "(none)"} (known: ${SCOPES.join(", ")})`;
  return null;
}
