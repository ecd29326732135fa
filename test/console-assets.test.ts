// The console and the API reference are served by the Worker from its static assets, under a strict
// Content-Security-Policy, and load nothing from another origin (they work offline).
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";

const INLINE_SCRIPT = /<script(?![^>]*\bsrc=)[^>]*>/i;
const EXTERNAL = /(?:src|href)="(?:https?:)?\/\//i;

function referenced(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
}

describe("static assets", () => {
  it("/console redirects to /console/, which is the built page under a strict CSP", async () => {
    const bare = await call("/console", { redirect: "manual" });
    expect(bare.status).toBe(308);
    expect(new URL(bare.headers.get("location")!).pathname).toBe("/console/");
    const page = await call("/console/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const html = await page.text();
    expect(html).not.toMatch(INLINE_SCRIPT);
    expect(html).not.toMatch(EXTERNAL);
    const files = referenced(html).filter((f) => f.startsWith("/console/assets/"));
    expect(files.some((f) => f.endsWith(".js"))).toBe(true);
    for (const file of files) {
      const res = await call(file);
      expect(res.status, file).toBe(200);
      expect(res.headers.get("cache-control"), file).toContain("immutable");
      const text = await res.text();
      // No URL of another origin is fetched by the bundle.
      expect(text, file).not.toMatch(/https:\/\/(?:cdn|unpkg|fonts)\./);
    }
  });

  it("/docs is Swagger UI from the Worker's own files, under a CSP without inline scripts", async () => {
    const page = await call("/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).not.toMatch(INLINE_SCRIPT);
    expect(html).not.toMatch(EXTERNAL);
    const files = referenced(html);
    expect(files).toEqual(expect.arrayContaining(["/docs/swagger-ui-bundle.js", "/docs/init.js", "/docs/swagger-ui.css"]));
    for (const file of files) expect((await call(file)).status, file).toBe(200);
  });

  it("unknown files are a JSON 404, other methods a 405, and the API is untouched", async () => {
    const missing = await call("/console/nope.js");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "not_found", message: "The requested resource was not found", details: null });
    expect((await call("/console/", { method: "POST" })).status).toBe(405);
    expect((await call("/consoles")).status).toBe(404);
    expect((await call("/health")).status).toBe(200);
  });
});
