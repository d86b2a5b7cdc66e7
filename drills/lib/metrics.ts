// Reads the cluster's /metrics (the primary aggregates every worker).
import type { TestServer } from '../../test/helpers/server.js';
import { sleep } from './procs.js';

export type Samples = Map<string, number>;

/** Every sample of one scrape, keyed by `name{labels}` exactly as exposed. Retries until no worker is missing. */
export async function scrape(server: TestServer, attempts = 10): Promise<Samples> {
  let last: Samples = new Map();
  for (let i = 0; i < attempts; i++) {
    const text = await fetch(server.metricsUrl('/metrics')).then((r) => r.text());
    last = new Map();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const cut = line.lastIndexOf(' ');
      last.set(line.slice(0, cut), Number(line.slice(cut + 1)));
    }
    if ((last.get('bike_metrics_workers_missing') ?? 0) === 0) return last;
    await sleep(200);
  }
  return last;
}

/** Sum of every sample of metric `name` whose labels contain all of `labels` (e.g. 'reason="idle"'). */
export function total(samples: Samples, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const [key, value] of samples) {
    const base = key.includes('{') ? key.slice(0, key.indexOf('{')) : key;
    if (base !== name) continue;
    if (labels.every((l) => key.includes(l))) sum += value;
  }
  return sum;
}
