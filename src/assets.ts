// The operator console (/console/) and the files of the API reference (/docs/*), served from
// Workers Static Assets (wrangler.toml [assets], built by `npm run build:assets`). The Worker runs
// first (run_worker_first) so that every file gets the same security headers, and the console a
// strict Content-Security-Policy: its own scripts and styles only, no inline script, no other origin.
const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Swagger UI sets inline style attributes as it renders; everything else is as strict as the console's. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const NOT_FOUND = JSON.stringify({ error: "not_found", message: "The requested resource was not found", details: null });

/** The answer for a static path, or null when the path is the API's. */
export function serveAsset(request: Request, env: Env): Promise<Response> | null {
  const url = new URL(request.url);
  const path = url.pathname;
  if (path === "/console") return Promise.resolve(Response.redirect(`${url.origin}/console/`, 308));
  const console = path.startsWith("/console/");
  if (!console && !path.startsWith("/docs/")) return null;
  return (async () => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(JSON.stringify({ error: "method_not_allowed", message: `Method ${request.method} is not allowed for this route`, details: null }), {
        status: 405,
        headers: { "content-type": "application/json", allow: "GET, HEAD" },
      });
    }
    if (!env.ASSETS) return new Response(NOT_FOUND, { status: 404, headers: { "content-type": "application/json" } });
    // Only the file: no cookies or credentials travel to the asset store.
    const answer = await env.ASSETS.fetch(new Request(url.toString(), { method: request.method }));
    if (answer.status === 404) return new Response(NOT_FOUND, { status: 404, headers: { "content-type": "application/json" } });
    const response = new Response(answer.body, answer);
    const headers = response.headers;
    headers.set("Content-Security-Policy", console ? CONSOLE_CSP : DOCS_CSP);
    headers.set("X-Content-Type-Options", "nosniff");
    headers.set("Referrer-Policy", "no-referrer");
    headers.set("X-Frame-Options", "DENY");
    // Vite names every built file by its content hash; the page itself must always be fresh.
    headers.set("Cache-Control", path.startsWith("/console/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    return response;
  })();
}
