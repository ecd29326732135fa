// `npm run client:check` (CI): regenerates the client's types from the OpenAPI document the app
// generates now and fails when they differ from the committed client/src/schema.ts, so the typed
// client can never describe another API than the one that ships. `npm run client:generate` fixes it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "client-check-"));
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
run("npx", ["tsx", "dev/openapi.ts", join(dir, "openapi.json")]);
run("npx", ["openapi-typescript", join(dir, "openapi.json"), "--output", join(dir, "schema.ts")]);
if (readFileSync(join(dir, "schema.ts"), "utf8") !== readFileSync("client/src/schema.ts", "utf8")) {
  console.error("FAIL  client/src/schema.ts does not match the API's OpenAPI document: run `npm run client:generate` and commit it");
  process.exit(1);
}
console.log("PASS  client/src/schema.ts matches the API's OpenAPI document");
