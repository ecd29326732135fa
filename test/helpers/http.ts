// Calls the Worker's fetch handler inside the Workers runtime, with optional env overrides
// (each override object is a new env, so config is parsed afresh), and waits for waitUntil work.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../../src/index";

export type Overrides = Partial<Record<string, string>>;

export async function call(path: string, init: RequestInit = {}, overrides: Overrides = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`http://service.test${path}`, init);
  const testEnv = { ...env, ...overrides } as Env;
  const response = await worker.fetch(request, testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export function jsonRequest(method: string, body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/** An address nothing listens on: a dependency that is down. */
export const DEAD_URL = "http://127.0.0.1:9";
