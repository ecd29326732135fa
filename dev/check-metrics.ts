// `npm run metrics:check -- <base-url>`: after traffic (CI runs it right after the smoke test),
// provokes one 429 so that rate_limit_hits_total has a sample, waits until every family of
// /metrics has samples (a family without any is not checked by promtool: its parser drops it),
// then has `promtool check metrics` read the scrape. Any promtool output, warnings included, fails.
// Prints PASS/FAIL lines; exit code 0 only if all pass.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const base = (process.argv[2] ?? process.env.SERVICE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const MAX_REQUESTS_FOR_429 = 2000;
const SAMPLES_DEADLINE_MS = 60_000;

let failures = 0;
function result(ok: boolean, name: string, detail: string) {
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
  if (!ok) failures++;
}

const get = (path: string) => fetch(`${base}${path}`, { signal: AbortSignal.timeout(15_000) });

/** Family name → number of samples, from the `# TYPE` lines and the sample lines under them. */
function samplesPerFamily(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  let family: string | undefined;
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) counts.set((family = type[1]!), 0);
    else if (family && line && !line.startsWith("#")) counts.set(family, counts.get(family)! + 1);
  }
  return counts;
}

let requests = 0;
let limited = false;
while (!limited && requests < MAX_REQUESTS_FOR_429) {
  const res = await get("/");
  await res.arrayBuffer();
  requests++;
  limited = res.status === 429;
}
result(limited, "a 429 from the rate limiter", limited ? `after ${requests} requests to /` : `none in ${requests} requests to /`);

let text = "";
let empty: string[] = [];
const deadline = Date.now() + SAMPLES_DEADLINE_MS;
do {
  if (text) await new Promise((r) => setTimeout(r, 1000));
  const res = await get("/metrics");
  text = await res.text();
  if (res.status !== 200) {
    result(false, "/metrics", `HTTP ${res.status}: ${text.slice(0, 200)}`);
    process.exit(1);
  }
  empty = [...samplesPerFamily(text)].filter(([, n]) => n === 0).map(([name]) => name);
} while (empty.length && Date.now() < deadline);
const families = samplesPerFamily(text);
result(families.size > 0 && empty.length === 0, "every family has samples", empty.length ? `none for ${empty.join(", ")}` : `${families.size} families, ${text.split("\n").length - 1} lines`);

const promtool = fileURLToPath(new URL("./promtool.sh", import.meta.url));
// Obtained first (the download speaks on stderr), so that the check's own output is all promtool's.
const obtained = spawnSync("bash", [promtool, "--version"], { stdio: ["ignore", "ignore", "inherit"] });
if (obtained.status !== 0) {
  result(false, "promtool", `dev/promtool.sh could not provide it (exit ${obtained.status})`);
  process.exit(1);
}
const check = spawnSync("bash", [promtool, "check", "metrics"], { input: text, encoding: "utf8" });
const said = `${check.stdout}${check.stderr}`.trim();
result(check.status === 0 && said === "", "promtool check metrics", check.status === 0 && said === "" ? "no problems" : `exit ${check.status}: ${said || check.error?.message}`);

process.exit(failures ? 1 : 0);
