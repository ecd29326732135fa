// The API user's webhook endpoints: where status webhooks go, which event types, and the secret
// that signs them. The secret (`whsec_` + base64 of 32 random bytes) is shown once, at creation and
// at rotation; it is stored as-is in Postgres because signing needs the key itself (an HMAC key
// cannot be kept as a one-way hash). Rotation replaces it at once: deliveries after it, retries of
// earlier events included, are signed with the new secret.
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import { WEBHOOK_EVENT_TYPES } from "../db/schema";
import type { Deps } from "../deps";
import { notFound, validationError } from "../errors";
import { uuidv7 } from "../ids";
import { webhookUrlProblem } from "../validation/webhook-url";
import { newWebhookSecret, type WebhookEventType } from "./outbound-webhooks";
import { iso, type Row } from "./representation";

export function toEndpoint(row: Row) {
  const events = (row.events as string[] | null) ?? [];
  return {
    id: row.id as string,
    url: row.url as string,
    description: (row.description as string | null) ?? null,
    /** every event type when the endpoint subscribed to all (stored as an empty list) */
    events: events.length === 0 ? [...WEBHOOK_EVENT_TYPES] : events,
    enabled: row.disabled_at == null,
    disabled_at: iso(row.disabled_at),
    disabled_reason: (row.disabled_reason as string | null) ?? null,
    failing_since: iso(row.failing_since),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}

export type Endpoint = ReturnType<typeof toEndpoint>;

export const endpointNotFound = () => notFound("Webhook endpoint not found");

function checkUrl(config: Config, url: string) {
  const problem = webhookUrlProblem(config, url);
  if (problem) throw validationError([{ path: "body.url", message: problem }]);
}

/** An endpoint subscribed to every type is stored with an empty list: it also gets types added later. */
const storedEvents = (events: WebhookEventType[] | undefined | null) =>
  !events || WEBHOOK_EVENT_TYPES.every((t) => events.includes(t)) ? [] : [...new Set(events)];

export interface EndpointInput {
  url: string;
  events?: WebhookEventType[] | null;
  description?: string | null;
}

export async function createEndpoint(deps: Deps, config: Config, input: EndpointInput): Promise<Endpoint & { secret: string }> {
  checkUrl(config, input.url);
  const secret = newWebhookSecret();
  const [row] = await deps.db().run<Row>(sql`
    insert into webhook_endpoints (id, url, description, events, secret)
    values (${uuidv7()}, ${input.url}, ${input.description ?? null}, ${`{${storedEvents(input.events).join(",")}}`}::text[], ${secret})
    returning *`);
  return { ...toEndpoint(row!), secret };
}

export async function listEndpoints(deps: Deps, page: { limit: number; offset: number }) {
  const rows = await deps.db().run<Row>(sql`
    select *, count(*) over () as total from webhook_endpoints order by created_at desc, id desc limit ${page.limit} offset ${page.offset}`);
  return { endpoints: rows.map(toEndpoint), total: rows.length > 0 ? Number(rows[0]!.total) : 0, limit: page.limit, offset: page.offset };
}

export async function getEndpoint(deps: Deps, id: string): Promise<Endpoint> {
  const [row] = await deps.db().run<Row>(sql`select * from webhook_endpoints where id = ${id}`);
  if (!row) throw endpointNotFound();
  return toEndpoint(row);
}

export interface EndpointPatch {
  url?: string;
  events?: WebhookEventType[] | null;
  description?: string | null;
  /** true re-enables a disabled endpoint (its failing streak starts afresh); false disables it */
  enabled?: boolean;
}

export async function updateEndpoint(deps: Deps, config: Config, id: string, patch: EndpointPatch): Promise<Endpoint> {
  if (patch.url !== undefined) checkUrl(config, patch.url);
  const events = patch.events === undefined ? null : `{${storedEvents(patch.events).join(",")}}`;
  const [row] = await deps.db().run<Row>(sql`
    update webhook_endpoints set
      url = coalesce(${patch.url ?? null}, url),
      events = coalesce(${events}::text[], events),
      description = case when ${patch.description !== undefined} then ${patch.description ?? null} else description end,
      disabled_at = case when ${patch.enabled === true} then null
                         when ${patch.enabled === false} then coalesce(disabled_at, now()) else disabled_at end,
      disabled_reason = case when ${patch.enabled === true} then null
                             when ${patch.enabled === false} then coalesce(disabled_reason, 'disabled_by_api') else disabled_reason end,
      failing_since = case when ${patch.enabled === true} then null else failing_since end,
      updated_at = now()
    where id = ${id}
    returning *`);
  if (!row) throw endpointNotFound();
  return toEndpoint(row);
}

/** Deletes the endpoint and its undelivered events (the message timelines keep the attempts). */
export async function deleteEndpoint(deps: Deps, id: string): Promise<void> {
  const rows = await deps.db().run<Row>(sql`delete from webhook_endpoints where id = ${id} returning id`);
  if (rows.length === 0) throw endpointNotFound();
}

export async function rotateSecret(deps: Deps, id: string): Promise<Endpoint & { secret: string }> {
  const secret = newWebhookSecret();
  const [row] = await deps.db().run<Row>(sql`update webhook_endpoints set secret = ${secret}, updated_at = now() where id = ${id} returning *`);
  if (!row) throw endpointNotFound();
  return { ...toEndpoint(row), secret };
}
