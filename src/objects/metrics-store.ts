// Service-wide counters for /metrics without a database or Redis write per request: each isolate
// adds up its own samples and hands them over in one RPC every few seconds; this one Durable Object
// keeps the sums in its SQLite storage. It knows nothing of the families: src/services/metrics.ts
// decides what a field means and how the exposition looks.
import { DurableObject } from "cloudflare:workers";

/**
 * One additive field of one series: a counter's `value`, or a histogram's `sum`, `count` or
 * `le=<bound>` (the observations in that bucket alone, not cumulative).
 */
export type StoredSample = { family: string; labels: string; field: string; value: number };

export class MetricsStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // `series` held whole sample lines as keys; its sums restart in `samples` (a counter reset).
    ctx.storage.sql.exec(`
      drop table if exists series;
      create table if not exists samples (
        family text not null, labels text not null, field text not null, value real not null,
        primary key (family, labels, field)) without rowid`);
  }

  async merge(samples: StoredSample[]): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const { family, labels, field, value } of samples) {
        this.ctx.storage.sql.exec(
          `insert into samples (family, labels, field, value) values (?, ?, ?, ?)
           on conflict (family, labels, field) do update set value = value + excluded.value`,
          family,
          labels,
          field,
          value,
        );
      }
    });
  }

  async snapshot(): Promise<StoredSample[]> {
    return this.ctx.storage.sql.exec<StoredSample>("select family, labels, field, value from samples").toArray();
  }
}
