// `npm run secrets`: the `wrangler secret put` commands for a production deployment (the
// top-level environment of wrangler.toml), from the SECRETS list in src/config.ts, so that this
// list cannot drift from the code.
import { SECRETS } from "../src/config.ts";

for (const [name, why] of Object.entries(SECRETS)) {
  console.log(`npx wrangler secret put ${name.padEnd(30)} --env=""   # ${why}`);
}
