// npm run lint:openapi: writes the app's OpenAPI document, the one /openapi.json serves (generated
// from the route declarations), to a file for `redocly lint`. It builds the app with createApp() and
// asks it for the document without serving a request, so nothing here needs the Workers runtime.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

// The app is Worker code, typechecked with the Worker's types (tsconfig.json): these paths are kept
// out of this script's Node typecheck.
const APP: string = "../src/app.ts";
const OPENAPI: string = "../src/openapi.ts";
const { createApp } = (await import(APP)) as { createApp: () => unknown };
const { openApiDocument } = (await import(OPENAPI)) as { openApiDocument: (app: unknown) => unknown };

const out = process.argv[2] ?? "dist/openapi.json";
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(openApiDocument(createApp()), null, 2)}\n`);
console.log(`wrote ${out}`);
