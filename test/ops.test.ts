// Proves the ops routes (§8, §10 cases 58-60): dependencies, metrics, OpenAPI and docs.
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { call } from "./helpers/http";
import { send, SMS } from "./helpers/fixtures";

describe("ops routes", () => {
  it("/dependencies reports the four entries and no versions (case 58)", async () => {
    const res = await call("/dependencies");
    expect(res.status).toBe(200);
    const body = await res.json<any>();
    expect(Object.keys(body.dependencies).sort()).toEqual(["postgresql", "provider_sendgrid", "provider_twilio", "redis"]);
    expect(JSON.stringify(body)).not.toMatch(/"version"/);
    expect(body.dependencies.postgresql.status).toBe("healthy");
  });

  it("/metrics has every metric family and no ids or numbers in labels (case 59)", async () => {
    await send(SMS);
    await call(`/api/v1/messages/${crypto.randomUUID()}`);
    const res = await call("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    for (const name of ["messages_total", "http_requests_total", "http_request_duration_seconds", "queue_depth", "message_processing_duration_seconds", "webhook_requests_total"]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(text).toMatch(/messages_total\{direction="outbound",type="sms",status="pending",provider="twilio"\} \d+/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/api\/v1\/messages\/\{message_id\}",status_code="404"\} \d+/);
    expect(text).toMatch(/queue_depth\{queue_name="sms"\} \d+/);
    const labels = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]!);
    for (const value of labels) {
      expect(value).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
      expect(value).not.toMatch(/\+\d{6,}/);
    }
  });

  it("/metrics is 404 when disabled", async () => {
    expect((await call("/metrics", {}, { METRICS_ENABLED: "false" })).status).toBe(404);
  });

  it("/openapi.json is OpenAPI 3.1 with the contract's paths and every app route documented (case 60)", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = await res.json<any>();
    expect(doc.openapi).toMatch(/^3\.1/);
    expect(doc.info.title).toBe("Messaging Service");
    expect(doc.paths).toHaveProperty("/api/v1/messages/send");
    expect(doc.paths).toHaveProperty("/api/v1/webhooks/twilio");
    expect(doc.paths["/api/v1/messages/send"].post.security).toEqual([{ bearerAuth: ["send"] }]);
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    const app = createApp();
    const undocumented = app.routes
      .filter((r) => r.method !== "ALL" && !["/openapi.json", "/docs"].includes(r.path))
      .map((r) => `${r.method} ${r.path.replace(/:([a-z_]+)/g, "{$1}")}`)
      .filter((route) => !documented.includes(route));
    expect(undocumented).toEqual([]);
  });

  it("/docs is HTML that loads /openapi.json, and / describes the service", async () => {
    const docs = await call("/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toContain("text/html");
    expect(await docs.text()).toContain("/openapi.json");
    const root = await call("/");
    expect((await root.json<any>()).status).toBe("operational");
  });
});
