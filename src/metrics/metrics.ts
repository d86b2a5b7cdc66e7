// The metrics of one worker, in a registry of its own. The primary asks every
// worker for `registry.getMetricsAsJSON()` and sums them (aggregate.ts).
// Labels never carry user, token, bike or address values.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'bike_requests_total',
    help: 'Requests answered, by request type and answer code (OK or the ErrorCode name).',
    labelNames: ['type', 'code'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'bike_request_duration_seconds',
    help: 'Time from a frame being read to its answer being queued, by request type.',
    labelNames: ['type'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly connectionsOpen = new Gauge({ name: 'bike_connections_open', help: 'Open protocol connections.', registers: [this.registry], aggregator: 'sum' });
  readonly connectionsTotal = new Counter({ name: 'bike_connections_total', help: 'Protocol connections accepted.', registers: [this.registry] });
  readonly connectionsRefused = new Counter({ name: 'bike_connections_refused_total', help: 'Connections refused at maxConnectionsPerWorker.', registers: [this.registry] });
  readonly connectionsClosed = new Counter({
    name: 'bike_connections_closed_total',
    help: 'Connections closed, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly framesRejected = new Counter({
    name: 'bike_frames_rejected_total',
    help: 'Frames refused: bad_magic, too_large, unknown_type, bad_request.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly repliesDropped = new Counter({ name: 'bike_replies_dropped_total', help: 'Answers whose connection had gone before they were ready.', registers: [this.registry] });
  readonly dbPool = new Gauge({
    name: 'bike_db_pool_connections',
    help: 'mysql2 pool connections by state (in_use, idle).',
    labelNames: ['state'] as const,
    registers: [this.registry],
    aggregator: 'sum',
  });
  readonly dbPoolWaiting = new Gauge({ name: 'bike_db_pool_waiting', help: 'Requests queued for a pool connection.', registers: [this.registry], aggregator: 'sum' });
  readonly redisUp = new Gauge({ name: 'bike_redis_up', help: '1 while this worker has a ready Redis connection (min over workers).', registers: [this.registry], aggregator: 'min' });
  readonly mysqlUp = new Gauge({ name: 'bike_mysql_up', help: '1 while this worker reaches MySQL (min over workers).', registers: [this.registry], aggregator: 'min' });
  readonly storeErrors = new Counter({
    name: 'bike_store_errors_total',
    help: 'MySQL/Redis calls that failed as unreachable, by store.',
    labelNames: ['store'] as const,
    registers: [this.registry],
  });

  // Label children bound once per (type, code): the per-request path then
  // skips prom-client's label hashing.
  private readonly bound = new Map<string, { inc: () => void; observe: (s: number) => void }>();

  /** One answered request: the counter by type and code, the histogram by type. */
  count(type: string, code: string, seconds: number): void {
    const key = type + ' ' + code;
    let b = this.bound.get(key);
    if (!b) {
      const counter = this.requests.labels({ type, code });
      const histogram = this.duration.labels({ type });
      b = { inc: () => counter.inc(), observe: (s) => histogram.observe(s) };
      this.bound.set(key, b);
    }
    b.inc();
    b.observe(seconds);
  }

  constructor(options: { defaults?: boolean } = {}) {
    if (options.defaults !== false) collectDefaultMetrics({ register: this.registry });
  }
}
