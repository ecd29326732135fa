// A typed client for the messaging API. The types (schema.ts) are generated from the OpenAPI
// document the service itself serves at /openapi.json (`npm run client:generate`), and CI fails
// when they no longer match it (`npm run client:check`), so a route or field change that the
// client does not follow cannot land. Requests go through openapi-fetch: no code per route.
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.ts";

export type { components, paths };
export type Message = components["schemas"]["Message"];
export type ApiError = components["schemas"]["Error"];
export type MessagingClient = Client<paths>;

export interface MessagingClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /** The service's origin, e.g. https://messaging.example.com */
  baseUrl: string;
  /** A bearer API key; omit only against a development instance without API_KEYS. */
  apiKey?: string;
}

export function createMessagingClient({ baseUrl, apiKey, headers, ...options }: MessagingClientOptions): MessagingClient {
  const auth: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  return createClient<paths>({ baseUrl: baseUrl.replace(/\/+$/, ""), headers: { ...auth, ...(headers as Record<string, string> | undefined) }, ...options });
}
