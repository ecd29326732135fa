// The operator console: queues, throughput and latency, failures by code, message search with the
// whole timeline, and dead letters with redrive. It polls the public API every few seconds while
// the tab is visible (the same stats calls anyone can make: no Redis polling of its own).
import { render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, forgetKey, storedKey, storeKey, type DeadLetter, type FailureGroup, type Message, type MessageEvent, type Stats, type Timeseries } from "./api";
import { clock, LineChart } from "./charts";
import "./style.css";

const POLL_MS = 5000;
/** The charts and failure groups read up to an hour of messages: every 15 s is fresh enough. */
const INSIGHTS_MS = 15_000;
const QUEUES = ["sms", "mms", "email"] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function App() {
  const [key, setKey] = useState<string | null>(storedKey());
  const [notice, setNotice] = useState<string | null>(null);
  const signOut = useCallback((why: string | null) => {
    forgetKey();
    setKey(null);
    setNotice(why);
  }, []);
  if (!key) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(k) => {
          storeKey(k);
          setNotice(null);
          setKey(k);
        }}
      />
    );
  }
  return <Console apiKey={key} onSignOut={signOut} />;
}

function SignIn({ notice, onSignedIn }: { notice: string | null; onSignedIn: (key: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const candidate = value.trim();
    if (!candidate) return setError("Enter an API key with the ops scope.");
    setBusy(true);
    setError(null);
    try {
      // The console needs `ops`: the queue stats say whether the key has it.
      await api(candidate, "/api/v1/queue/stats");
      onSignedIn(candidate);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) setError("This key does not have the ops scope. The console needs an ops or admin key.");
      else if (err instanceof ApiError && err.status === 401) setError("This key is not valid.");
      else setError(`The service did not answer: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Messaging console</h1>
      <form onSubmit={submit} aria-describedby="signin-help">
        <label for="api-key">Ops API key</label>
        <input id="api-key" name="api-key" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} aria-invalid={error ? "true" : undefined} aria-describedby={error ? "signin-error" : undefined} />
        <p id="signin-help" class="help">
          Kept in this tab's session storage only, and sent as a bearer token to this service.
        </p>
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

interface Snapshot {
  stats: Stats | null;
  series: Timeseries | null;
  failures: FailureGroup[] | null;
  deadLetters: { dead_letters: DeadLetter[]; total: number } | null;
  error: string | null;
  updatedAt: Date | null;
}

function Console({ apiKey, onSignOut }: { apiKey: string; onSignOut: (why: string | null) => void }) {
  const [snap, setSnap] = useState<Snapshot>({ stats: null, series: null, failures: null, deadLetters: null, error: null, updatedAt: null });
  const [status, setStatus] = useState<string>("");
  const [opened, setOpened] = useState<string | null>(null);
  const call = useCallback(
    async <T,>(path: string, init?: { method?: string; body?: unknown }) => {
      try {
        return await api<T>(apiKey, path, init);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) onSignOut("The key is no longer valid; sign in again.");
        if (err instanceof ApiError && err.status === 403 && err.code === "insufficient_scope") onSignOut("This key does not have the ops scope. The console needs an ops or admin key.");
        throw err;
      }
    },
    [apiKey, onSignOut],
  );

  // The queues and dead letters every poll; the hour's charts and failure groups (heavier reads)
  // every INSIGHTS_EVERY polls, and at once after an action.
  const lastInsights = useRef(0);
  const refresh = useCallback(
    async (everything = true) => {
      const insights = everything || Date.now() - lastInsights.current >= INSIGHTS_MS;
      try {
        const [stats, deadLetters, series, failures] = await Promise.all([
          call<Stats>("/api/v1/queue/stats"),
          call<{ dead_letters: DeadLetter[]; total: number }>("/api/v1/queue/dead-letters?limit=50"),
          insights ? call<Timeseries>("/api/v1/ops/timeseries?minutes=60") : Promise.resolve(null),
          insights ? call<{ codes: FailureGroup[] }>("/api/v1/ops/failures?minutes=60") : Promise.resolve(null),
        ]);
        if (insights) lastInsights.current = Date.now();
        setSnap((s) => ({ stats, deadLetters, series: series ?? s.series, failures: failures?.codes ?? s.failures, error: null, updatedAt: new Date() }));
      } catch (err) {
        setSnap((s) => ({ ...s, error: (err as Error).message }));
      }
    },
    [call],
  );

  useEffect(() => {
    void refresh();
    const timer = setInterval(() => {
      if (!document.hidden) void refresh(false);
    }, POLL_MS);
    const visible = () => !document.hidden && void refresh();
    document.addEventListener("visibilitychange", visible);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", visible);
    };
  }, [refresh]);

  const confirm = useConfirm();

  const redriveOne = async (id: string) => {
    if (!(await confirm(`Redrive message ${id}? It goes back to pending and is sent again.`, "Redrive"))) return;
    try {
      await call(`/api/v1/queue/dead-letters/${id}/redrive`, { method: "POST" });
      setStatus(`Message ${id} redriven.`);
    } catch (err) {
      setStatus(`Redrive failed: ${(err as Error).message}`);
    }
    await refresh();
  };

  const redriveCode = async (group: FailureGroup) => {
    const label = group.code || "(no code)";
    if (!(await confirm(`Redrive all ${group.dead_letters} dead letters with error code ${label}? Each is sent again.`, `Redrive ${group.dead_letters}`))) return;
    let total = 0;
    try {
      // The service redrives a bounded batch per call and says how many are left.
      for (let round = 0; round < 50; round++) {
        const result = await call<{ redriven: string[]; remaining: number }>("/api/v1/queue/dead-letters/redrive", { method: "POST", body: { code: group.code, limit: 100 } });
        total += result.redriven.length;
        if (result.remaining === 0 || result.redriven.length === 0) break;
      }
      setStatus(`${total} dead letters with code ${label} redriven.`);
    } catch (err) {
      setStatus(`Redrive failed after ${total}: ${(err as Error).message}`);
    }
    await refresh();
  };

  return (
    <>
      <header class="top">
        <h1>Messaging console</h1>
        <p class="updated" aria-live="off">
          {snap.updatedAt ? `Updated ${snap.updatedAt.toLocaleTimeString()}` : "Loading…"}
          {snap.stats && ` · ${snap.stats.processing_mode} processing · ${snap.stats.shards_per_type} shard${snap.stats.shards_per_type === 1 ? "" : "s"} per type`}
        </p>
        <button type="button" class="secondary" onClick={() => onSignOut(null)}>
          Sign out
        </button>
      </header>
      <main class="console">
        <p class="status" role="status" aria-live="polite">
          {status}
        </p>
        {snap.error && (
          <p class="error" role="alert">
            Could not refresh: {snap.error}
          </p>
        )}
        <Queues stats={snap.stats} />
        <Charts series={snap.series} />
        <Failures failures={snap.failures} onRedrive={redriveCode} />
        <Search call={call} opened={opened} onOpen={setOpened} onRedrive={redriveOne} />
        <DeadLetters list={snap.deadLetters} onRedrive={redriveOne} onOpen={setOpened} />
      </main>
      {confirm.dialog}
    </>
  );
}

const age = (seconds: number | null) => {
  if (seconds === null) return "—";
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
};

function Queues({ stats }: { stats: Stats | null }) {
  return (
    <section aria-labelledby="queues-title">
      <h2 id="queues-title">Queues</h2>
      {!stats ? (
        <p>Loading…</p>
      ) : (
        <>
          <p class="meta">{stats.sweep_heartbeat_age_seconds === null ? "The cron sweep has not run yet." : `Cron sweep last ran ${age(stats.sweep_heartbeat_age_seconds)} ago.`}</p>
          <div class="queues">
            {QUEUES.map((type) => {
              const q = stats.queues[type];
              const circuit = q.circuit?.state ?? "closed";
              return (
                <article class="queue" aria-labelledby={`queue-${type}`} data-queue={type}>
                  <h3 id={`queue-${type}`}>
                    {type.toUpperCase()} <span class={`badge circuit-${circuit}`}>circuit {circuit.replace("_", "-")}</span>
                  </h3>
                  <dl>
                    <dt>Depth</dt>
                    <dd data-field="depth">{q.stream_length}</dd>
                    <dt>Pending</dt>
                    <dd data-field="pending">{q.pending}</dd>
                    <dt>Retry scheduled</dt>
                    <dd data-field="retry">{q.retry_scheduled}</dd>
                    <dt>Oldest</dt>
                    <dd data-field="oldest">{age(q.oldest_pending_age_seconds)}</dd>
                    <dt>Dead letters</dt>
                    <dd data-field="dead-letters">{q.dead_letters}</dd>
                    <dt>Held</dt>
                    <dd data-field="held">{q.held}</dd>
                    <dt>Worker heartbeat</dt>
                    <dd data-field="heartbeat">{q.worker_heartbeat_age_seconds === null ? "never" : `${age(q.worker_heartbeat_age_seconds)} ago`}</dd>
                    <dt>Shards</dt>
                    <dd data-field="shards">{q.circuit?.shards.join(", ") || Array.from({ length: stats.shards_per_type }, (_, i) => `${type}:${i}`).join(", ")}</dd>
                    <dt>Processed / failed</dt>
                    <dd data-field="totals">
                      {q.processed_total} / {q.failed_total}
                    </dd>
                  </dl>
                  {q.circuit && q.circuit.state !== "closed" && (
                    <p class="warning">
                      {q.circuit.reason ?? "open"} since {q.circuit.since ? clock(q.circuit.since) : "—"}
                      {q.circuit.next_probe_at && `, next probe ${clock(q.circuit.next_probe_at)}`}
                      {q.circuit.last_error && `: ${q.circuit.last_error}`}
                    </p>
                  )}
                </article>
              );
            })}
          </div>
        </>
      )}
    </section>
  );
}

function Charts({ series }: { series: Timeseries | null }) {
  if (!series) return null;
  const pts = series.points;
  const sum = (f: (p: (typeof pts)[number]) => number) => pts.reduce((n, p) => n + f(p), 0);
  const p95s = pts.map((p) => p.latency_p95_ms).filter((v): v is number => v !== null);
  return (
    <section aria-labelledby="charts-title">
      <h2 id="charts-title">Last hour</h2>
      {series.truncated && <p class="warning">More messages than the chart reads: the oldest minutes are undercounted.</p>}
      <div class="charts">
        <LineChart
          title="Throughput per minute"
          unit=""
          points={pts}
          summary={`${sum((p) => p.created)} created, ${sum((p) => p.sent)} sent, ${sum((p) => p.failed)} failed, ${sum((p) => p.inbound)} received in ${series.minutes} minutes`}
          series={[
            { label: "created", className: "s-created", values: pts.map((p) => p.created) },
            { label: "sent", className: "s-sent", values: pts.map((p) => p.sent) },
            { label: "failed", className: "s-failed", values: pts.map((p) => p.failed) },
          ]}
        />
        <LineChart
          title="Latency, created to sent"
          unit=" ms"
          points={pts}
          summary={p95s.length ? `p95 between ${Math.min(...p95s)} and ${Math.max(...p95s)} ms` : "nothing sent"}
          series={[
            { label: "p50", className: "s-p50", values: pts.map((p) => p.latency_p50_ms) },
            { label: "p95", className: "s-p95", values: pts.map((p) => p.latency_p95_ms) },
          ]}
        />
      </div>
    </section>
  );
}

function Failures({ failures, onRedrive }: { failures: FailureGroup[] | null; onRedrive: (g: FailureGroup) => void }) {
  return (
    <section aria-labelledby="failures-title">
      <h2 id="failures-title">Failures by error code (last hour)</h2>
      {!failures ? (
        <p>Loading…</p>
      ) : failures.length === 0 ? (
        <p>No failures.</p>
      ) : (
        <div class="scroll" tabIndex={0} role="region" aria-labelledby="failures-title">
          <table>
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Failures</th>
                <th scope="col">Dead letters</th>
                <th scope="col">Class</th>
                <th scope="col">Latest message</th>
                <th scope="col">Last</th>
                <th scope="col">
                  <span class="visually-hidden">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {failures.map((g) => (
                <tr data-code={g.code}>
                  <th scope="row">{g.code || "(none)"}</th>
                  <td>{g.failures}</td>
                  <td data-field="dead-letters">{g.dead_letters}</td>
                  <td>{g.error_class ?? "—"}</td>
                  <td class="wrap">{g.message ?? "—"}</td>
                  <td>{g.last_failed_at ? clock(g.last_failed_at) : "—"}</td>
                  <td>
                    {g.dead_letters > 0 && (
                      <button type="button" onClick={() => onRedrive(g)}>
                        Redrive all {g.dead_letters}
                        <span class="visually-hidden"> with code {g.code || "none"}</span>
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

type Call = <T>(path: string, init?: { method?: string; body?: unknown }) => Promise<T>;

function Search({ call, opened, onOpen, onRedrive }: { call: Call; opened: string | null; onOpen: (id: string | null) => void; onRedrive: (id: string) => Promise<void> }) {
  const [query, setQuery] = useState("");
  const [results, setResults] = useState<Message[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const q = query.trim();
    if (!q) return;
    setError(null);
    try {
      if (UUID.test(q)) {
        const message = await call<Message>(`/api/v1/messages/${q}`);
        setResults([message]);
        onOpen(message.id);
      } else {
        const list = await call<{ messages: Message[] }>(`/api/v1/messages?to=${encodeURIComponent(q)}&limit=20`);
        setResults(list.messages);
        if (list.messages.length === 1) onOpen(list.messages[0]!.id);
      }
    } catch (err) {
      setResults([]);
      setError(err instanceof ApiError && err.status === 404 ? "No message has this id." : (err as Error).message);
    }
  };
  return (
    <section aria-labelledby="search-title">
      <h2 id="search-title">Find a message</h2>
      <form class="search" onSubmit={submit} role="search">
        <label for="search-q">Message id or recipient</label>
        <input id="search-q" type="search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} placeholder="+15559876543, name@example.com or an id" />
        <button type="submit">Search</button>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {results && results.length === 0 && !error && <p>No messages to this recipient.</p>}
      {results && results.length > 0 && (
        <ul class="results" aria-label="Search results">
          {results.map((m) => (
            <li>
              <button type="button" class="link" aria-expanded={opened === m.id} onClick={() => onOpen(opened === m.id ? null : m.id)}>
                <span class={`badge status-${m.status}`}>{m.status}</span> {m.type} to {m.to} · {new Date(m.created_at).toLocaleString()} · <code>{m.id}</code>
              </button>
            </li>
          ))}
        </ul>
      )}
      {opened && <Timeline key={opened} id={opened} call={call} onRedrive={onRedrive} />}
    </section>
  );
}

function Timeline({ id, call, onRedrive }: { id: string; call: Call; onRedrive: (id: string) => Promise<void> }) {
  const [message, setMessage] = useState<Message | null>(null);
  const [events, setEvents] = useState<MessageEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const load = useCallback(async () => {
    try {
      const [m, e] = await Promise.all([call<Message>(`/api/v1/messages/${id}`), call<{ events: MessageEvent[] }>(`/api/v1/messages/${id}/events?limit=500`)]);
      setMessage(m);
      setEvents(e.events);
    } catch (err) {
      setError((err as Error).message);
    }
  }, [id, call]);
  useEffect(() => {
    void load();
    const timer = setInterval(() => !document.hidden && void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [load]);
  useEffect(() => {
    if (message) heading.current?.focus();
  }, [message === null]);
  if (error) return <p class="error" role="alert">{error}</p>;
  if (!message || !events) return <p>Loading the timeline…</p>;
  return (
    <article class="timeline" aria-labelledby="timeline-title">
      <h3 id="timeline-title" tabIndex={-1} ref={heading}>
        Timeline of <code>{message.id}</code>
      </h3>
      <p>
        <span class={`badge status-${message.status}`} data-field="status">
          {message.status}
        </span>{" "}
        {message.type} from {message.from} to {message.to}, {message.attempts ?? 0} attempt{message.attempts === 1 ? "" : "s"}
        {message.error && ` · ${message.error.code}: ${message.error.message}`}
      </p>
      {message.status === "failed" && (
        <button type="button" onClick={() => onRedrive(message.id).then(load)}>
          Redrive this message
        </button>
      )}
      <ol class="events">
        {events.map((e) => (
          <li data-event={e.type}>
            <time dateTime={e.created_at}>{new Date(e.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}</time> <strong>{e.type.replace(/_/g, " ")}</strong> <EventDetail event={e} />
          </li>
        ))}
      </ol>
    </article>
  );
}

function EventDetail({ event }: { event: MessageEvent }) {
  const d = event.data;
  const parts: string[] = [];
  const add = (label: string, value: unknown) => value !== undefined && value !== null && value !== "" && parts.push(`${label} ${String(value)}`);
  switch (event.type) {
    case "attempt":
      add("#", d.attempt);
      add("", d.outcome);
      add("via", d.provider);
      add("in", d.duration_ms !== undefined ? `${d.duration_ms} ms` : undefined);
      add("HTTP", d.http_status);
      add("provider status", d.provider_status);
      add("error", d.error_code !== undefined ? `${d.error_code} ${d.error_message ?? ""}`.trim() : undefined);
      break;
    case "retry_scheduled":
      add("due", typeof d.due_at === "string" ? new Date(d.due_at).toLocaleTimeString() : d.due_at ?? d.next_attempt_at);
      add("after", d.delay_seconds !== undefined ? `${d.delay_seconds} s` : undefined);
      break;
    case "status_changed":
      add("", d.from !== undefined ? `${d.from} → ${d.to}` : undefined);
      add("by", d.source);
      break;
    case "created":
      add("from", d.source);
      add("key", d.api_key);
      break;
    default:
      for (const [k, v] of Object.entries(d).slice(0, 6)) add(k, typeof v === "object" ? JSON.stringify(v) : v);
  }
  return <span class="detail">{parts.join(" · ").replace(/\s+/g, " ")}</span>;
}

function DeadLetters({ list, onRedrive, onOpen }: { list: { dead_letters: DeadLetter[]; total: number } | null; onRedrive: (id: string) => void; onOpen: (id: string) => void }) {
  return (
    <section aria-labelledby="dl-title">
      <h2 id="dl-title">Dead letters {list && <span class="count">({list.total})</span>}</h2>
      {!list ? (
        <p>Loading…</p>
      ) : list.dead_letters.length === 0 ? (
        <p>No dead letters.</p>
      ) : (
        <div class="scroll" tabIndex={0} role="region" aria-labelledby="dl-title">
          <table>
            <thead>
              <tr>
                <th scope="col">Message</th>
                <th scope="col">Type</th>
                <th scope="col">Code</th>
                <th scope="col">Error</th>
                <th scope="col">When</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.dead_letters.map((d) => (
                <tr data-message={d.message_id}>
                  <th scope="row">
                    <button type="button" class="link" onClick={() => onOpen(d.message_id)}>
                      <code>{d.message_id.slice(0, 8)}…</code>
                      <span class="visually-hidden">open the timeline of {d.message_id}</span>
                    </button>
                  </th>
                  <td>{d.type}</td>
                  <td>{d.error.code || "—"}</td>
                  <td class="wrap">{d.error.message}</td>
                  <td>{clock(d.dead_lettered_at)}</td>
                  <td>
                    <button type="button" onClick={() => onRedrive(d.message_id)}>
                      Redrive<span class="visually-hidden"> {d.message_id}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** A modal confirmation (native <dialog>: focus trapped, Escape cancels); resolves to the choice. */
function useConfirm() {
  const ref = useRef<HTMLDialogElement>(null);
  const [ask, setAsk] = useState<{ text: string; action: string; resolve: (ok: boolean) => void } | null>(null);
  useEffect(() => {
    if (ask && ref.current && !ref.current.open) ref.current.showModal();
  }, [ask]);
  const close = (ok: boolean) => {
    ref.current?.close();
    ask?.resolve(ok);
    setAsk(null);
  };
  const confirm = (text: string, action: string) => new Promise<boolean>((resolve) => setAsk({ text, action, resolve }));
  confirm.dialog = (
    <dialog ref={ref} aria-labelledby="confirm-title" aria-describedby="confirm-text" onCancel={(e) => (e.preventDefault(), close(false))}>
      <h2 id="confirm-title">Please confirm</h2>
      <p id="confirm-text">{ask?.text}</p>
      <div class="actions">
        <button type="button" class="secondary" onClick={() => close(false)} autofocus>
          Cancel
        </button>
        <button type="button" class="danger" onClick={() => close(true)}>
          {ask?.action ?? "Confirm"}
        </button>
      </div>
    </dialog>
  );
  return confirm;
}

render(<App />, document.getElementById("app")!);
