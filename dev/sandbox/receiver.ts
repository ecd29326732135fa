// A customer's webhook receiver, for the status webhooks the service sends (Standard Webhooks):
// POST /__receiver/<name> records what arrived (headers, raw body, time) and answers as programmed
// for that name, one answer per request, then 200:
//   "200" / "500" / any status   answer it (body `{"answer": status}` plus some padding, so that a
//                                test sees the stored response prefix is bounded)
//   "hang"                       never answer (the socket stays open until the client gives up)
//   "slow:<ms>"                  answer 200 after <ms>
// Control: POST /__sandbox/receiver {"name", "answers": [...]}, GET /__sandbox/receiver?name=,
// POST /__sandbox/receiver/reset {"name"?}.
import type http from "node:http";
import { flatHeaders, sendJson, sleep } from "./shared.ts";

export interface ReceivedWebhook {
  seq: number;
  time: string;
  name: string;
  headers: Record<string, string>;
  rawBody: string;
  /** what it answered: a status, "hang", or "slow:<ms>" */
  answer: string;
}

export class Receiver {
  private seq = 0;
  readonly received: ReceivedWebhook[] = [];
  private readonly answers = new Map<string, string[]>();

  programme(name: string, answers: string[]): void {
    for (const a of answers) if (!/^(\d{3}|hang|slow:\d+)$/.test(a)) throw new Error(`unknown answer ${a}: a status, "hang" or "slow:<ms>"`);
    this.answers.set(name, [...answers]);
  }

  reset(name?: string): void {
    if (name === undefined) {
      this.received.length = 0;
      this.answers.clear();
      return;
    }
    this.answers.delete(name);
    for (let i = this.received.length - 1; i >= 0; i--) if (this.received[i]!.name === name) this.received.splice(i, 1);
  }

  list(name: string | null): ReceivedWebhook[] {
    return this.received.filter((r) => name === null || r.name === name);
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse, name: string, raw: Buffer): Promise<void> {
    const answer = this.answers.get(name)?.shift() ?? "200";
    this.received.push({ seq: ++this.seq, time: new Date().toISOString(), name, headers: flatHeaders(req), rawBody: raw.toString("utf8"), answer });
    if (answer === "hang") return; // the client's timeout ends it
    if (answer.startsWith("slow:")) {
      await sleep(Number(answer.slice(5)));
      return sendJson(res, 200, { answer: 200 });
    }
    const status = Number(answer);
    sendJson(res, status, { answer: status, padding: "x".repeat(2000) });
  }

  async control(req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: Buffer): Promise<boolean> {
    const route = `${req.method} ${url.pathname}`;
    const body = () => (raw.length === 0 ? {} : (JSON.parse(raw.toString("utf8")) as Record<string, unknown>));
    if (route === "POST /__sandbox/receiver") {
      const { name, answers } = body();
      if (typeof name !== "string" || !Array.isArray(answers)) {
        sendJson(res, 400, { error: "name and answers are required" });
        return true;
      }
      try {
        this.programme(name, answers.map(String));
      } catch (error) {
        sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        return true;
      }
      sendJson(res, 200, { ok: true });
      return true;
    }
    if (route === "GET /__sandbox/receiver") {
      sendJson(res, 200, { received: this.list(url.searchParams.get("name")) });
      return true;
    }
    if (route === "POST /__sandbox/receiver/reset") {
      const { name } = body();
      this.reset(typeof name === "string" ? name : undefined);
      sendJson(res, 200, { ok: true });
      return true;
    }
    return false;
  }
}
