// The operator console: Preact, built by Vite into dist-assets/console (served by Workers Static
// Assets at /console/). No CDN and no inline script, so it runs offline under the strict CSP the
// Worker sends with it (src/assets.ts).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist-assets/console", import.meta.url)),
    emptyOutDir: true,
    // The module preload polyfill would be an inline script; every browser the console targets has it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  logLevel: "warn",
});
