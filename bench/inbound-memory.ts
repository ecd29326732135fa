// `npm run bench:inbound-memory`: how much memory workerd takes for the largest webhooks SendGrid
// sends, a 30 MB Inbound Parse post (one 29 MB attachment) and a 5 MB Event Webhook batch, against
// the Workers isolate limit of 128 MB.
//
// What is measured: the workerd process's peak resident set (VmHWM in /proc) while one request is
// handled, minus its resident set just before (the peak is reset through /proc/PID/clear_refs). The
// process holds every isolate and the runtime, so this is an upper bound for the request's isolate;
// workerd's own per-isolate heap is not visible from outside. Linux only.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { isMain, startBenchStack } from "./lib.ts";

const MB = 1024 * 1024;

export interface InboundMemoryResult {
  /** MB: peak RSS above the RSS before, per case */
  cases: { name: string; bodyMB: number; status: number; expectedStatus: number; rssBeforeMB: number; peakAboveMB: number }[];
}

function descendants(pid: number): number[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
  } catch {
    return [];
  }
  const children = out.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0);
  return children.flatMap((c) => [c, ...descendants(c)]);
}

function workerdPids(root: number): number[] {
  const pids = descendants(root).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, "utf8").trim() === "workerd";
    } catch {
      return false;
    }
  });
  if (pids.length === 0) throw new Error("no workerd process under the stack");
  return pids;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? NaN);
}

function inboundParse(attachmentBytes: number): { body: Uint8Array<ArrayBuffer>; contentType: string } {
  const boundary = "----bench-inbound-memory";
  const part = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head =
    part("from", "Ann Example <ann@example.com>") +
    part("to", "inbound@example.com") +
    part("subject", `memory ${Date.now()}`) +
    part("text", "a large attachment") +
    part("attachments", "1") +
    `--${boundary}\r\nContent-Disposition: form-data; name="attachment1"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const body = new Uint8Array(head.length + attachmentBytes + tail.length);
  body.set(new TextEncoder().encode(head), 0);
  body.fill(0x79, head.length, head.length + attachmentBytes);
  body.set(new TextEncoder().encode(tail), head.length + attachmentBytes);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

function eventBatch(bytes: number): Uint8Array<ArrayBuffer> {
  const one = { event: "open", sg_event_id: "", email: "ann@example.com", timestamp: 1736937000, useragent: "Mozilla/5.0 ".repeat(40) };
  const size = JSON.stringify(one).length + 40;
  const events = Array.from({ length: Math.floor(bytes / size) }, (_, i) => ({ ...one, sg_event_id: `mem-${Date.now()}-${i}` }));
  return new TextEncoder().encode(JSON.stringify(events));
}

export async function runInboundMemory(port = Number(process.env.PORT ?? 8187)): Promise<InboundMemoryResult> {
  const stack = await startBenchStack(port);
  try {
    const pids = workerdPids(stack.wrangler.pid!);
    console.log(`workerd processes: ${pids.map((p) => `${p} (${statusKb(p, "VmRSS")} kB)`).join(", ")}`);
    const cases: InboundMemoryResult["cases"] = [];
    const parse = inboundParse(30 * MB - 4096);
    const batch = eventBatch(5 * MB - 64 * 1024);
    const requests = [
      // The runtime's own share (wrangler dev's proxy in the same process, the request's buffers):
      // the same 30 MB to a path that never reads it.
      { name: "30 MB to a path that does not read it (404)", body: parse.body, contentType: parse.contentType, path: "/api/v1/not-a-route", expectedStatus: 404 },
      { name: "Inbound Parse, 30 MB (one attachment)", body: parse.body, contentType: parse.contentType, path: "/api/v1/webhooks/sendgrid", expectedStatus: 200 },
      { name: "Event Webhook batch, 5 MB", body: batch, contentType: "application/json", path: "/api/v1/webhooks/sendgrid", expectedStatus: 200 },
    ];
    // Warm the isolate with a small request of no interest, so that the first reading holds the
    // request and not the modules. No large warm-up: V8 keeps a heap it grew, and a second large
    // request reuses it without raising the RSS, so only each type's first request says anything.
    await fetch(`${stack.url}/live`);
    for (const r of requests) {
      for (let run = 0; run < 2; run++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        // Every workerd process under the stack (wrangler runs the Worker in one and its own proxy
        // in another): each peak is reset, and the process that grew most is reported.
        for (const p of pids) writeFileSync(`/proc/${p}/clear_refs`, "5"); // resets VmHWM to the current RSS
        const before = pids.map((p) => statusKb(p, "VmRSS"));
        const res = await fetch(`${stack.url}${r.path}`, { method: "POST", headers: { "content-type": r.contentType }, body: new Blob([r.body]) });
        await res.arrayBuffer();
        const above = pids.map((p, i) => statusKb(p, "VmHWM") - before[i]!);
        const most = above.indexOf(Math.max(...above));
        const [rssBefore, peakAbove] = [before[most]!, above[most]!];
        cases.push({ name: `${r.name}${run === 0 ? "" : " (again: heap already grown)"}`, bodyMB: r.body.length / MB, status: res.status, expectedStatus: r.expectedStatus, rssBeforeMB: rssBefore / 1024, peakAboveMB: peakAbove / 1024 });
      }
    }
    return { cases };
  } finally {
    await stack.close();
  }
}

if (isMain(import.meta.url)) {
  const result = await runInboundMemory();
  for (const c of result.cases) {
    console.log(`${c.name}: HTTP ${c.status}, workerd RSS ${c.rssBeforeMB.toFixed(0)} MB before, peak +${c.peakAboveMB.toFixed(1)} MB (body ${c.bodyMB.toFixed(1)} MB)`);
  }
  if (result.cases.some((c) => c.status !== c.expectedStatus)) process.exit(1);
}
