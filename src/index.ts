// The Worker: the Hono app for fetch, the sweep for scheduled, and the Durable Object classes.
import { createApp } from "./app";
import { serveAsset } from "./assets";
import { loadConfig } from "./config";
import { openDatabase } from "./db/client";
import { errorFields, log } from "./log";
import { openRedis } from "./queue/redis";
import { runSweep, type SweepOptions } from "./queue/sweep";

export { QueueWorker } from "./objects/queue-worker";
export { MetricsStore } from "./objects/metrics-store";
export { WebhookWorker } from "./objects/webhook-worker";
export { MediaFetcher } from "./objects/media-fetcher";

const app = createApp();

/** The cron's work: failures are logged; the next minute's sweep tries again. */
export async function sweep(env: Env, options: SweepOptions = {}) {
  const config = loadConfig(env);
  const db = openDatabase(config);
  try {
    return await runSweep(env, config, openRedis(config), db, options);
  } catch (error) {
    log("error", "sweep_failed", errorFields(error));
    throw error;
  } finally {
    await db.end();
  }
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    return serveAsset(request, env) ?? app.fetch(request, env, ctx);
  },
  async scheduled(_controller, env) {
    await sweep(env);
  },
} satisfies ExportedHandler<Env>;
