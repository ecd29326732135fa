// `npm run build`: the bundle of the top-level (production) environment, exactly as a plain
// `wrangler deploy` would upload it, without uploading (`--dry-run --outdir dist`). It fails when
// that bundle would not run as production: a deploy without `--env` must never ship development
// settings (no auth, unsigned webhooks).
import { spawnSync } from "node:child_process";

const run = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--env=", "--outdir", "dist"], {
  encoding: "utf8",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
const output = `${run.stdout}${run.stderr}`;
process.stdout.write(output);
if (run.status !== 0) process.exit(run.status ?? 1);

const environment = /env\.ENVIRONMENT \("([^"]*)"\)/.exec(output)?.[1];
if (environment !== "production") {
  console.error(`\nbuild: the default deployment would run with ENVIRONMENT=${environment ?? "(unset)"}; it must be "production"`);
  process.exit(1);
}
console.log("\nbuild: the default deployment runs with ENVIRONMENT=production");
