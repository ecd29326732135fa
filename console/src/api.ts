// The console's only way to the service: the public API with the operator's key as a bearer token.
// The key lives in sessionStorage (gone when the tab closes) and never in a URL.
const STORAGE_KEY = "messaging-console:key";

export const storedKey = () => sessionStorage.getItem(STORAGE_KEY);
export const storeKey = (key: string) => sessionStorage.setItem(STORAGE_KEY, key);
export const forgetKey = () => sessionStorage.removeItem(STORAGE_KEY);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message);
  }
}

export async function api<T>(key: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), cache: "no-store" });
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    throw new ApiError(res.status, String(body?.error ?? "error"), String(body?.message ?? `HTTP ${res.status}`), body?.details ?? null);
  }
  return body as T;
}

export interface Circuit {
  state: "closed" | "open" | "half_open";
  reason: string | null;
  since: string | null;
  next_probe_at: string | null;
  last_error: string | null;
  shards: string[];
}

export interface QueueStat {
  stream: string;
  stream_length: number;
  pending: number;
  retry_scheduled: number;
  dead_letters: number;
  held: number;
  oldest_pending_age_seconds: number | null;
  worker_heartbeat_age_seconds: number | null;
  circuit: Circuit | null;
  processed_total: number;
  failed_total: number;
}

export interface Stats {
  generated_at: string;
  queues: Record<"sms" | "mms" | "email", QueueStat>;
  processing_mode: "sync" | "async";
  shards_per_type: number;
  sweep_heartbeat_age_seconds: number | null;
}

export interface Point {
  minute: string;
  created: number;
  sent: number;
  failed: number;
  inbound: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export interface Timeseries {
  minutes: number;
  points: Point[];
  truncated: boolean;
}

export interface FailureGroup {
  code: string;
  failures: number;
  dead_letters: number;
  error_class: string | null;
  message: string | null;
  types: string[];
  last_failed_at: string | null;
}

export interface DeadLetter {
  message_id: string;
  conversation_id: string;
  type: string;
  attempts: number;
  error_class: string;
  error: { code: string; message: string };
  dead_lettered_at: string;
}

export interface Message {
  id: string;
  type: string;
  direction: string;
  status: string;
  from: string;
  to: string;
  body: string | null;
  attempts?: number;
  error?: { code: string | null; message: string | null } | null;
  created_at: string;
  updated_at?: string;
  [field: string]: unknown;
}

export interface MessageEvent {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
}
