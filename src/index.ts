// The Worker: the Hono app for fetch, the sweep for scheduled, and the Durable Object classes.
import { createApp } from "./app";

export { QueueWorker } from "./objects/queue-worker";
export { MetricsStore } from "./objects/metrics-store";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(_controller, _env, _ctx) {
    // The sweep lands with the worker issue (DESIGN.md §4).
  },
} satisfies ExportedHandler<Env>;
