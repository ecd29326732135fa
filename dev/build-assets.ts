// `npm run build:assets` (also run before dev, test, build and deploy): what Workers Static Assets
// serves, in dist-assets/ (wrangler.toml [assets]): the operator console built by Vite into
// dist-assets/console, and Swagger UI's files from swagger-ui-dist with the page's own script in
// dist-assets/docs, so that /console and /docs load nothing from elsewhere.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "dist-assets");

export async function buildAssets(): Promise<void> {
  await build({ configFile: join(root, "console/vite.config.ts"), logLevel: "warn" });
  const docs = join(out, "docs");
  rmSync(docs, { recursive: true, force: true });
  mkdirSync(docs, { recursive: true });
  const swagger = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  for (const file of ["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"]) copyFileSync(join(swagger, file), join(docs, file));
  copyFileSync(join(root, "console/docs/init.js"), join(docs, "init.js"));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  await buildAssets();
  console.log(`build:assets: dist-assets/ (console, docs) in ${Math.round(performance.now() - started)} ms`);
}
