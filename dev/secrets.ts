// `npm run secrets`: the `wrangler secret put` commands for a production deployment, from the
// SECRETS list in src/config.ts (so this list cannot drift from the code).
import { SECRETS } from "../src/config.ts";

const env = process.argv[2] ?? "production";
for (const [name, why] of Object.entries(SECRETS)) {
  console.log(`npx wrangler secret put ${name.padEnd(30)} --env ${env}   # ${why}`);
}
