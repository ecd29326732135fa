// `npm run keys -- create --name ci --scopes send,read`: a new random API key, printed once, and
// the API_KEYS entry to store for it (NAME:SCOPES:SHA256HEX), so that only its digest is kept in
// the Worker's secrets. `npm run keys -- hash --name ci --scopes ops` reads a key on stdin instead.
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { entryProblem, SCOPES } from "../src/http/scopes.ts";

const USAGE = `usage: npm run keys -- create --name NAME --scopes ${SCOPES.join(",")}
       npm run keys -- hash --name NAME --scopes SCOPES < key   (an existing key on stdin)`;

function fail(message: string): never {
  console.error(`npm run keys: ${message}\n${USAGE}`);
  process.exit(2);
}

export function entryFor(name: string, scopes: string[], key: string): string {
  const entry = `${name}:${scopes.join("+")}:${createHash("sha256").update(key).digest("hex")}`;
  const problem = entryProblem(entry);
  if (problem) throw new Error(problem);
  return entry;
}

/** 32 random bytes, base64url: no comma, colon or space, so it fits API_KEYS as is. */
export const newKey = () => `msk_${randomBytes(32).toString("base64url")}`;

async function main() {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { name: { type: "string" }, scopes: { type: "string" } } });
  const command = positionals[0];
  if (command !== "create" && command !== "hash") fail(command ? `unknown command ${command}` : "a command is required");
  if (!values.name) fail("--name is required");
  if (!values.scopes) fail("--scopes is required");
  const scopes = values.scopes.split(/[,+]/).map((s) => s.trim()).filter(Boolean);

  let key: string;
  if (command === "create") key = newKey();
  else {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    key = Buffer.concat(chunks).toString("utf8").trim();
    if (!key || /[\s,:]/.test(key)) fail("the key on stdin must be one token without spaces, commas or colons");
  }

  let entry: string;
  try {
    entry = entryFor(values.name, scopes, key);
  } catch (error) {
    fail((error as Error).message);
  }
  if (command === "create") {
    console.log(`key (shown once; give it to the client, it is not stored anywhere):\n  ${key}\n`);
  }
  console.log(`API_KEYS entry (append it, comma-separated, with wrangler secret put API_KEYS):\n  ${entry}`);
}

// A command when run, a library when imported (npm run test:e2e makes its keys with it).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
