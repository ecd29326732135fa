// Service-wide counters for /metrics without a database or Redis write per request (DESIGN.md §8):
// each isolate adds up its own samples and hands them over in one RPC every few seconds; this one
// Durable Object keeps the sums in its SQLite storage.
import { DurableObject } from "cloudflare:workers";

export class MetricsStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("create table if not exists series (key text primary key, value real not null)");
  }

  async add(samples: [string, number][]): Promise<void> {
    for (const [key, value] of samples) {
      this.ctx.storage.sql.exec(
        "insert into series (key, value) values (?, ?) on conflict (key) do update set value = value + excluded.value",
        key,
        value,
      );
    }
  }

  async snapshot(): Promise<{ key: string; value: number }[]> {
    return this.ctx.storage.sql.exec<{ key: string; value: number }>("select key, value from series order by key").toArray();
  }
}
