// The primary never touches a request. It migrates the schema, forks one
// worker per core, restarts the ones that die (with backoff and a crash-loop
// cap), turns SIGTERM/SIGINT into a drain of every worker, and serves
// /metrics, /healthz and /readyz.
import cluster, { type Worker } from 'node:cluster';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Config } from '../config/config.js';
import { createLogger } from '../log.js';
import { ClusterScraper } from '../metrics/aggregate.js';
import { serveHttp } from '../metrics/http.js';
import { migrate } from '../stores/migrate.js';
import { isToPrimary } from './ipc.js';

interface WorkerState {
  worker: Worker;
  listening: boolean;
  mysql: boolean;
  redis: boolean;
}

const MAX_BACKOFF_MS = 30_000;

export async function runPrimary(config: Config): Promise<void> {
  const log = createLogger(config.logLevel, { role: 'primary' });
  const registry = new Registry();
  const restarts = new Counter({ name: 'bike_worker_restarts_total', help: 'Workers started again after dying.', registers: [registry] });
  const live = new Gauge({ name: 'bike_workers_live', help: 'Worker processes alive.', registers: [registry] });
  const missing = new Gauge({ name: 'bike_metrics_workers_missing', help: 'Workers that did not answer the last /metrics scrape in time.', registers: [registry] });
  const scraper = new ClusterScraper();

  const workers = new Map<number, WorkerState>();
  const deaths: number[] = [];
  let draining = false;
  let forced = false;
  let migrated = false;

  const fork = () => {
    const worker = cluster.fork();
    workers.set(worker.id, { worker, listening: false, mysql: false, redis: false });
    live.set(workers.size);
    worker.on('message', (msg: unknown) => {
      if (!isToPrimary(msg)) return;
      const state = workers.get(worker.id);
      if (!state || scraper.onMessage(msg)) return;
      if (msg.bike === 'listening') state.listening = true;
      else if (msg.bike === 'health') Object.assign(state, { mysql: msg.mysql, redis: msg.redis });
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    workers.delete(worker.id);
    live.set(workers.size);
    if (draining) {
      if (workers.size === 0) finish(forced ? 1 : 0);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length && now - deaths[0] > 60_000) deaths.shift();
    if (deaths.length > config.maxRestartsPerMinute) {
      log.error({ deaths: deaths.length }, 'workers keep dying; not restarting');
      if (workers.size === 0) {
        log.fatal('no worker left; exiting');
        process.exit(1);
      }
      return;
    }
    const backoff = Math.min(MAX_BACKOFF_MS, config.restartBackoffMs * 2 ** (deaths.length - 1));
    log.warn({ worker: worker.id, code, signal, backoffMs: backoff }, 'worker died; restarting');
    setTimeout(() => {
      if (draining) return;
      restarts.inc();
      fork();
    }, backoff);
  });

  const http = await serveHttp(config.host, config.metricsPort, {
    alive: () => !migrated || workers.size > 0,
    notReady: () => {
      if (draining) return 'draining';
      if (!migrated) return 'migrating';
      const states = [...workers.values()];
      if (states.filter((s) => s.listening).length < config.workers) return 'workers starting';
      if (!states.every((s) => s.mysql)) return 'mysql unreachable';
      if (!states.every((s) => s.redis)) return 'redis unreachable';
      return null;
    },
    metrics: async () => {
      const states = [...workers.values()].filter((s) => s.listening);
      const result = await scraper.scrape(
        states.map((s) => s.worker),
        [await registry.getMetricsAsJSON()],
        config.metricsScrapeTimeoutMs,
      );
      missing.set(result.missing);
      return result.text;
    },
  });

  function finish(code: number): void {
    log.info({ code }, 'primary exits');
    http.close();
    process.exit(code);
  }

  // Node runs signal listeners on the event loop, not in a raw handler: safe to do real work here.
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      log.warn({ signal }, 'second signal: forcing shutdown');
      for (const s of workers.values()) s.worker.process.kill('SIGKILL');
      process.exit(1);
    }
    draining = true;
    log.info({ signal, workers: workers.size }, 'draining');
    if (workers.size === 0) return finish(0);
    for (const s of workers.values()) s.worker.send({ bike: 'drain' });
    setTimeout(() => {
      forced = true;
      log.error('drain timed out; killing workers');
      for (const s of workers.values()) s.worker.process.kill('SIGKILL');
    }, config.shutdownTimeoutMs).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // Health and signals are live before the (possibly slow) migration, so
  // probes get an honest 503 "migrating" and a stop is never ignored.
  if (config.migrateOnStart) await migrateWithRetry(config, log, () => draining);
  migrated = true;
  if (draining) return;
  for (let i = 0; i < config.workers; i++) fork();
  log.info({ workers: config.workers, port: config.port, metricsPort: config.metricsPort }, 'primary started');
}

async function migrateWithRetry(config: Config, log: ReturnType<typeof createLogger>, stopping: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; !stopping(); attempt++) {
    try {
      const result = await migrate(config.mysqlUrl, config.storeTimeoutMs);
      log.info({ database: result.database, applied: result.applied }, 'schema ready');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      log.warn({ err: (err as Error).message, attempt }, 'migration failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
    }
  }
}
