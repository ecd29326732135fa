// `npm run test:e2e`: the operator console in a real browser. Starts the local stack as `npm run dev`
// does (its own Postgres database, Redis logical database and free ports; the provider sandbox for
// Twilio and SendGrid), with an ops, a read and a send key, and drives Debian's Chromium through
// playwright-core (no browser download; `apt-get install -y chromium` when it is missing and we are
// root). Scenario: a read key is refused; an ops key signs in and sees the three queues; a message
// sent through the API to the sandbox's permanent-failure recipient is found by its recipient, its
// timeline read, redriven after a confirmation, and the counts change; /docs renders offline.
// Screenshots (desktop and phone width) go to docs/screenshots/. Exit code 0 only if every step passed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { buildAssets } from "../build-assets.ts";
import { dropDatabase } from "../db.ts";
import { entryFor, newKey } from "../keys.ts";
import { claimRedisDb, type ClaimedRedisDb } from "../redis-db.ts";
import { startStack, type Stack } from "../stack.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const POSTGRES_URL = process.env.E2E_POSTGRES_URL ?? "postgres://root@127.0.0.1:5432/postgres";
const SCREENSHOTS = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
/** The sandbox answers Twilio error 21211 (a permanent failure) for this number (dev/sandbox/shared.ts). */
const PERMANENT_FAILURE = "+15005550001";
/** Ceilings for conditions, not budgets: a busy 2-core machine is slow, not wrong. */
const WAIT_MS = 90_000;

let failures = 0;
const step = (ok: boolean, name: string, detail = "") => {
  console.log(`${ok ? "PASS" : "FAIL"}  ${name}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures++;
  return ok;
};

function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (sudo apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  console.log(`${CHROMIUM} is missing: apt-get install -y chromium`);
  let run = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (run.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit" });
    run = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
  if (run.status !== 0 || !existsSync(CHROMIUM)) throw new Error(`could not install chromium (apt-get exit ${run.status}); install it and run again`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Made exactly as `npm run keys -- create` makes them, so the Worker is shown to accept those. */
function makeKey(name: string, scopes: string[]) {
  const key = newKey();
  return { key, entry: entryFor(name, scopes, key) };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as T;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const keys = { ops: makeKey("e2e-ops", ["ops"]), read: makeKey("e2e-read", ["read"]), send: makeKey("e2e-send", ["send"]) };
const databaseUrl = Object.assign(new URL(POSTGRES_URL), { pathname: `/msg_e2e_${process.pid}` }).toString();
let stack: Stack | undefined;
let claimed: ClaimedRedisDb | undefined;
let browser: Browser | undefined;
const persistTo = mkdtempSync(join(tmpdir(), "msg-e2e-"));

async function apiCall(path: string, key: string, init: { method?: string; body?: unknown } = {}) {
  const res = await fetch(`${stack!.url}${path}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${key}`, ...(init.body ? { "content-type": "application/json" } : {}) },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function signIn(page: Page, key: string) {
  await page.goto(`${stack!.url}/console`);
  await page.getByLabel("Ops API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const queueField = (page: Page, type: string, field: string) => page.locator(`[data-queue="${type}"] [data-field="${field}"]`);

async function main() {
  ensureChromium();
  console.log("building the console and the docs assets");
  await buildAssets();
  const [port, bridgePort, proxyPort, sandboxPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  claimed = await claimRedisDb(REDIS_URL);
  console.log(`starting the local stack on port ${port} (Redis db ${claimed.db}, database ${new URL(databaseUrl).pathname.slice(1)})`);
  stack = await startStack({
    port,
    bridgePort,
    proxyPort,
    sandboxPort,
    databaseUrl,
    redisUrl: REDIS_URL,
    redisDb: claimed.db,
    token: "e2e-token",
    quiet: !process.env.E2E_VERBOSE,
    persistTo,
    vars: {
      API_KEYS: [keys.ops.entry, keys.read.entry, keys.send.entry].join(","),
      // Two attempts and short backoff, so that the permanent failure is dead-lettered at once.
      QUEUE_MAX_ATTEMPTS: "2",
      QUEUE_RETRY_DELAY: "0.2",
    },
  });

  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const foreign: string[] = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (!["127.0.0.1", "localhost"].includes(url.hostname) && url.protocol !== "data:") foreign.push(r.url());
  });

  // 1. A read key is refused by the console.
  await signIn(page, keys.read.key);
  const refusal = page.getByRole("alert");
  await refusal.waitFor({ timeout: WAIT_MS });
  step((await refusal.textContent())?.includes("does not have the ops scope") ?? false, "a read key is refused", (await refusal.textContent()) ?? "");
  step((await page.evaluate(() => sessionStorage.length)) === 0, "the refused key is not kept");
  // (the 403 the refusal came from is logged by Chromium as a failed resource load)
  problems.length = 0;

  // 2. An ops key signs in and sees the three queues.
  // By keyboard: the field is labelled, and Enter submits.
  await page.getByLabel("Ops API key").fill(keys.ops.key);
  await page.getByLabel("Ops API key").press("Enter");
  await page.getByRole("heading", { name: "Queues" }).waitFor({ timeout: WAIT_MS });
  await page.locator("[data-queue]").first().waitFor({ timeout: WAIT_MS });
  const queues = await page.locator("[data-queue]").evaluateAll((els) => els.map((e) => e.getAttribute("data-queue")));
  step(JSON.stringify(queues) === JSON.stringify(["sms", "mms", "email"]), "the three queues are shown", queues.join(", "));
  step((await page.evaluate(() => Object.values(sessionStorage))).length === 1 && !page.url().includes(keys.ops.key), "the key is in session storage, never in the URL");
  const deadBefore = Number(await queueField(page, "sms", "dead-letters").textContent());

  // Some ordinary traffic first, so that the charts have something to show.
  for (let i = 0; i < 6; i++) {
    const ok = await apiCall("/api/v1/messages/send", keys.send.key, { method: "POST", body: { type: "sms", from: "+15551230000", to: `+1555987${String(1000 + i)}`, body: `e2e ${i}` } });
    if (ok.status !== 201) step(false, "an ordinary send", `HTTP ${ok.status}`);
  }

  // 3. A message to the permanent-failure recipient, through the API with the send key.
  const sent = await apiCall("/api/v1/messages/send", keys.send.key, { method: "POST", body: { type: "sms", from: "+15551230000", to: PERMANENT_FAILURE, body: "e2e: this recipient always fails" } });
  step(sent.status === 201, "the send key sends", `HTTP ${sent.status}`);
  const id = sent.body.id as string;
  step((await apiCall("/api/v1/messages", keys.send.key)).status === 403, "the send key cannot list messages");
  await waitFor("the message to be dead-lettered", async () => {
    const list = await apiCall("/api/v1/queue/dead-letters?type=sms", keys.ops.key);
    return list.body.dead_letters?.some((d: { message_id: string }) => d.message_id === id);
  });
  // The console's own polling shows the new dead letter.
  await waitFor("the console to count the dead letter", async () => Number(await queueField(page, "sms", "dead-letters").textContent()) === deadBefore + 1);
  step(true, "the dead letter shows in the SMS queue", `${deadBefore} -> ${deadBefore + 1}`);
  await page.locator(`tr[data-code="21211"]`).waitFor({ timeout: WAIT_MS });
  step(true, "the failure shows under its error code 21211");

  // 4. Find it by its recipient and read its timeline.
  await page.getByLabel("Message id or recipient").fill(PERMANENT_FAILURE);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const timeline = page.locator("article.timeline");
  await timeline.waitFor({ timeout: WAIT_MS });
  step(((await timeline.locator("h3 code").textContent()) ?? "") === id, "the search opens the message's timeline", id);
  const events = await timeline.locator("li[data-event]").evaluateAll((els) => els.map((e) => e.getAttribute("data-event")));
  step(["created", "attempt", "dead_lettered"].every((t) => events.includes(t)), "the timeline has its attempts and the dead letter", events.join(" > "));
  const attemptText = (await timeline.locator('li[data-event="attempt"]').first().textContent()) ?? "";
  step(/\d+ ms/.test(attemptText) && attemptText.includes("21211"), "an attempt shows its duration and the provider's answer", attemptText.trim());
  const created = (await timeline.locator('li[data-event="created"]').textContent()) ?? "";
  step(created.includes("e2e-send"), "the created event names the key that sent it", created.trim());

  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, "console-desktop.png"), fullPage: true });

  // 5. Redrive it, behind a confirmation, and see the counts change.
  const attemptsBefore = events.filter((t) => t === "attempt").length;
  const failedCount = async () => Number(((await queueField(page, "sms", "totals").textContent()) ?? "").split("/")[1]);
  const failedBefore = await failedCount();
  await timeline.getByRole("button", { name: "Redrive this message" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor({ timeout: WAIT_MS });
  step(((await dialog.textContent()) ?? "").includes(id), "the redrive asks for a confirmation");
  await dialog.getByRole("button", { name: "Redrive" }).click();
  await page.getByRole("status").filter({ hasText: "redriven" }).waitFor({ timeout: WAIT_MS });
  step(true, "the console says it was redriven");
  await waitFor("the redriven message to be attempted again", async () => {
    const now = await timeline.locator("li[data-event]").evaluateAll((els) => els.map((e) => e.getAttribute("data-event")));
    return now.includes("redriven") && now.filter((t) => t === "attempt").length > attemptsBefore;
  });
  step(true, "the timeline shows the redrive and a new attempt");
  // The recipient still fails: the SMS queue counts one more failure, and the dead letter is back.
  await waitFor("the SMS failed count to grow", async () => (await failedCount()) > failedBefore);
  step(true, "the SMS queue's failed count changes", `${failedBefore} -> ${await failedCount()}`);
  await waitFor("the dead letter to be back", async () => Number(await queueField(page, "sms", "dead-letters").textContent()) === deadBefore + 1);

  // 5b. Redrive all dead letters of the code, from the failures table.
  const row = page.locator('tr[data-code="21211"]');
  // Escape cancels the confirmation and nothing is redriven.
  await row.getByRole("button", { name: /Redrive all/ }).click();
  await dialog.waitFor({ timeout: WAIT_MS });
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden", timeout: WAIT_MS });
  step((await timeline.locator('li[data-event="redriven"]').count()) === 1, "Escape cancels a redrive");
  await row.getByRole("button", { name: /Redrive all/ }).click();
  await dialog.waitFor({ timeout: WAIT_MS });
  step(((await dialog.textContent()) ?? "").includes("21211"), "redriving a code asks for a confirmation");
  await dialog.getByRole("button", { name: /^Redrive \d+$/ }).click();
  await page.getByRole("status").filter({ hasText: "with code 21211 redriven" }).waitFor({ timeout: WAIT_MS });
  step(true, "every dead letter of code 21211 is redriven", (await page.getByRole("status").textContent()) ?? "");
  await waitFor("the third attempt", async () => (await timeline.locator('li[data-event="redriven"]').count()) === 2);
  step(true, "the timeline shows the second redrive");
  await waitFor("the dead letter to be back again", async () => Number(await queueField(page, "sms", "dead-letters").textContent()) === deadBefore + 1);
  await page.locator(`tr[data-message="${id}"]`).waitFor({ timeout: WAIT_MS });

  // 6. Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const wide = overflow > 1 ? await page.evaluate(() => Array.from(document.querySelectorAll("body *")).filter((e) => !e.closest(".scroll") && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 5).map((e) => `${e.tagName}.${e.className}`).join(" ")) : "";
  step(overflow <= 1, "no horizontal scrolling at 390 px", `${overflow} px ${wide}`);
  await page.screenshot({ path: join(SCREENSHOTS, "console-phone.png") });

  // 7. /docs renders from the Worker's own files.
  const docs = await context.newPage();
  docs.on("pageerror", (e) => problems.push(`docs: ${String(e)}`));
  docs.on("console", (m) => m.type() === "error" && problems.push(`docs: ${m.text()}`));
  docs.on("request", (r) => !r.url().startsWith(stack!.url) && !r.url().startsWith("data:") && foreign.push(r.url()));
  await docs.goto(`${stack.url}/docs`);
  await docs.locator(".swagger-ui .info .title").waitFor({ timeout: WAIT_MS });
  step(((await docs.locator(".swagger-ui .info .title").textContent()) ?? "").includes("Messaging Service"), "/docs renders the API reference");

  step(foreign.length === 0, "nothing is loaded from another origin", foreign.join(", "));
  step(problems.length === 0, "no script errors or CSP violations", problems.join(" | "));
}

try {
  await main();
} catch (error) {
  step(false, "e2e", error instanceof Error ? error.message : String(error));
} finally {
  await browser?.close().catch(() => undefined);
  await stack?.stop().catch(() => undefined);
  await claimed?.release().catch(() => undefined);
  await dropDatabase(databaseUrl).catch(() => undefined);
  rmSync(persistTo, { recursive: true, force: true });
}
console.log(failures === 0 ? "\ne2e: all steps passed" : `\ne2e: ${failures} step(s) failed`);
process.exit(failures === 0 ? 0 : 1);
