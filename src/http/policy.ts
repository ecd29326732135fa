// Which checks a route gets, derived from its template exactly as docs/api.md/ word it,
// so that a new route cannot silently skip auth or rate limiting.
export interface RoutePolicy {
  /** bearer API key required (subject to ENVIRONMENT/API_KEYS, */
  auth: boolean;
  rateLimited: boolean;
  webhook: boolean;
  /** takes a JSON body: content-type check and JSON parsing apply */
  jsonBody: boolean;
}

/**
 * Probes and the metrics scrape cost no rate-limiter round trip: /ready, /startup and /dependencies
 * are limited per address in memory and cached (src/http/probe-limit.ts), /metrics by METRICS_TOKEN.
 */
const PROBES = new Set(["/health", "/ready", "/live", "/startup", "/dependencies", "/metrics"]);
/** POSTs without a body: retry, mark read, cancel, rotate-secret, redeliver, and one dead letter's redrive (redrive by code has one). */
const BODYLESS_POSTS = /\/(retry|read|cancel|rotate-secret|redeliver)$|\}\/redrive$/;

export function policyFor(method: string, template: string): RoutePolicy {
  const m = method.toUpperCase();
  const webhook = m === "POST" && (template.startsWith("/api/v1/webhooks/") || template.startsWith("/api/webhooks/"));
  const api = template === "/api" || template.startsWith("/api/");
  return {
    auth: api && !webhook,
    rateLimited: !webhook && !PROBES.has(template) && m !== "OPTIONS",
    webhook,
    jsonBody: api && !webhook && (m === "POST" || m === "PATCH") && !BODYLESS_POSTS.test(template),
  };
}
