// One worker: one event loop with its own pools, services and listener.
// It shares nothing with other workers; the primary tells it to drain.
import type { Config } from '../config/config.js';
import { systemClock, type Clock } from '../clock.js';
import { createLogger, type Logger } from '../log.js';
import { Metrics } from '../metrics/metrics.js';
import { ProtocolServer } from '../net/server.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { routes } from '../dispatch/routes.js';
import { Db } from '../stores/mysql.js';
import { createRedis, waitReady } from '../stores/redis.js';
import { CodeStore } from '../services/codes.js';
import { SessionStore } from '../services/sessions.js';
import { createSmsSender } from '../services/sms.js';
import { AuthService } from '../services/auth.js';
import { AccountService } from '../services/account.js';
import { BikeService } from '../services/bikes.js';
import { RideService } from '../services/rides.js';
import { isToWorker, type ToPrimary } from './ipc.js';

const HEALTH_EVERY_MS = 1000;

export interface WorkerHandle {
  port: number;
  drain(): Promise<void>;
}

/** Builds and starts a worker's whole stack. Used by the cluster worker and by in-process tests. */
export async function startWorker(config: Config, log: Logger, clock: Clock = systemClock, metrics = new Metrics()): Promise<WorkerHandle> {
  const db = new Db({
    url: config.mysqlUrl,
    poolSize: config.mysqlPoolSize,
    txPoolSize: config.mysqlTxPoolSize,
    timeoutMs: config.storeTimeoutMs,
    onUnavailable: () => metrics.storeErrors.inc({ store: 'mysql' }),
  });
  const redis = createRedis({ url: config.redisUrl, timeoutMs: config.storeTimeoutMs });
  let redisWasUp = true;
  redis.on('error', (err) => {
    metrics.storeErrors.inc({ store: 'redis' });
    if (redisWasUp) log.warn({ err: err.message }, 'redis connection lost');
    redisWasUp = false;
  });
  redis.on('ready', () => {
    if (!redisWasUp) log.info('redis connection back');
    redisWasUp = true;
  });

  const sessions = new SessionStore(redis, config.tokenTtlSeconds);
  const codes = new CodeStore(redis, {
    ttlMs: config.codeTtlSeconds * 1000,
    resendMs: config.codeResendSeconds * 1000,
    maxAttempts: config.codeMaxAttempts,
    perAddressPerMinute: config.codeRequestsPerAddressPerMinute,
    failuresPerHour: config.loginFailuresPerPhonePerHour,
  });
  const services = {
    clock,
    auth: new AuthService(db, codes, sessions, createSmsSender(config.smsSender, log), config, clock),
    account: new AccountService(db, clock),
    bikes: new BikeService(db, clock),
    rides: new RideService(db, config, clock),
  };
  const dispatcher = new Dispatcher(routes(services), (token) => sessions.userOf(token), metrics, log);
  const server = new ProtocolServer(config, dispatcher, metrics, log);
  dispatcher.connections = server.connections;

  await waitReady(redis, config.storeTimeoutMs);
  const port = await server.listen();

  let mysqlUp = await db.ping();
  const health = setInterval(async () => {
    mysqlUp = await db.ping();
    const stats = db.poolStats();
    metrics.dbPool.set({ state: 'in_use' }, stats.inUse);
    metrics.dbPool.set({ state: 'idle' }, stats.idle);
    metrics.dbPoolWaiting.set(stats.waiting);
    metrics.mysqlUp.set(mysqlUp ? 1 : 0);
    metrics.redisUp.set(redis.status === 'ready' ? 1 : 0);
    report({ bike: 'health', mysql: mysqlUp, redis: redis.status === 'ready' });
  }, HEALTH_EVERY_MS);
  health.unref();
  metrics.mysqlUp.set(mysqlUp ? 1 : 0);
  metrics.redisUp.set(redis.status === 'ready' ? 1 : 0);
  report({ bike: 'health', mysql: mysqlUp, redis: redis.status === 'ready' });

  let draining: Promise<void> | null = null;
  return {
    port,
    drain() {
      draining ??= (async () => {
        dispatcher.startDrain();
        const budget = Math.max(100, config.shutdownTimeoutMs - 1000);
        const timer = setTimeout(() => server.destroyAll(), budget);
        await server.drain();
        clearTimeout(timer);
        clearInterval(health);
        await Promise.allSettled([db.close(), redis.quit()]);
        redis.disconnect();
      })();
      return draining;
    },
  };
}

function report(msg: ToPrimary): void {
  if (process.send && process.connected) process.send(msg);
}

/** Entry point of a forked worker process. */
export async function runWorker(config: Config, workerId: number): Promise<void> {
  const log = createLogger(config.logLevel, { role: 'worker', worker: workerId });
  const metrics = new Metrics();
  // Only the primary acts on signals (in a container only it receives them);
  // a Ctrl-C reaching the whole process group must not kill workers mid-request.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; worker exits and the primary starts another');
    process.exit(1);
  });
  const worker = await startWorker(config, log, systemClock, metrics);
  const drainAndExit = () =>
    worker.drain().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  process.on('message', (msg) => {
    if (!isToWorker(msg)) return;
    if (msg.bike === 'drain') void drainAndExit();
    else if (msg.bike === 'metrics') {
      void metrics.registry.getMetricsAsJSON().then((m) => report({ bike: 'metrics', id: msg.id, metrics: m as never }));
    }
  });
  // The primary died (kill -9): finish what is in flight and leave.
  process.on('disconnect', () => void drainAndExit());
  report({ bike: 'listening', port: worker.port });
  log.info({ port: worker.port }, 'worker listening');
}
