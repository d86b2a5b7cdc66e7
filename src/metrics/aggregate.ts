// /metrics over the whole cluster: the primary asks every live worker for its
// registry as JSON, waits a bounded time, and sums what came back with
// prom-client's own cluster aggregation (each metric's `aggregator` decides:
// sum for counters and most gauges, min for the *_up gauges). A worker that
// does not answer in time is left out and counted, never blanks the scrape.
import type { Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { MetricsJson, ToPrimary } from '../cluster/ipc.js';

export class ClusterScraper {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: MetricsJson) => void>();

  /** Feed every worker message here; returns true if it was a metrics answer. */
  onMessage(msg: ToPrimary): boolean {
    if (msg.bike !== 'metrics') return false;
    this.waiting.get(msg.id)?.(msg.metrics);
    return true;
  }

  async scrape(workers: Worker[], own: MetricsJson[], timeoutMs: number): Promise<{ text: string; missing: number }> {
    const answers = await Promise.all(workers.map((w) => this.ask(w, timeoutMs)));
    const got = answers.filter((a): a is MetricsJson => a !== null);
    const registry = AggregatorRegistry.aggregate([...got, ...own]);
    return { text: await registry.metrics(), missing: answers.length - got.length };
  }

  private ask(worker: Worker, timeoutMs: number): Promise<MetricsJson | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const done = (m: MetricsJson | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(m);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.waiting.set(id, done);
      try {
        worker.send({ bike: 'metrics', id });
      } catch {
        done(null);
      }
    });
  }
}
