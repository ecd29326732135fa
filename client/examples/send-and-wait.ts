// The README's example, typechecked by `npm run typecheck` (tsconfig.node.json).
import { createMessagingClient, type Message } from "@messaging-service/client";

const api = createMessagingClient({ baseUrl: "https://messaging.example.com", apiKey: process.env.MESSAGING_API_KEY });

/** Sends once (the Idempotency-Key makes a retry safe), then waits for a final status. */
async function sendAndWait(to: string, text: string, key: string): Promise<Message> {
  for (let attempt = 0; ; attempt++) {
    const { data, error, response } = await api.POST("/api/v1/messages/send", {
      body: { type: "sms", from: "+15551234567", to, body: text },
      params: { header: { "Idempotency-Key": key } },
    });
    if (data) return waitForFinal(data.id);
    // 503 and 429 say when to come back; the same key never sends twice.
    if ((response.status === 503 || response.status === 429) && attempt < 5) {
      await sleep(Number(response.headers.get("retry-after") ?? "1") * 1000);
      continue;
    }
    // Anything else is final: error.error is the code, error.details says which field.
    throw new Error(`${response.status} ${error?.error}: ${error?.message}`);
  }
}

async function waitForFinal(id: string): Promise<Message> {
  for (;;) {
    const { data, error } = await api.GET("/api/v1/messages/{message_id}", { params: { path: { message_id: id } } });
    if (error) throw new Error(`${error.error}: ${error.message}`);
    if (["sent", "delivered", "undelivered", "failed", "canceled"].includes(data.status)) return data;
    await sleep(1000);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { sendAndWait };
