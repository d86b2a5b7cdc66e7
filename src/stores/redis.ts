// The ioredis client of one worker. Auto-pipelining batches the commands of
// one event-loop turn into one write; no offline queue, so while Redis is
// unreachable a command fails at once (SERVICE_UNAVAILABLE) instead of piling up.
import { Redis } from 'ioredis';

export interface RedisOptions {
  url: string;
  timeoutMs: number;
}

export function createRedis(options: RedisOptions): Redis {
  return new Redis(options.url, {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: false,
  });
}

/** Resolves when the client is ready, or after `ms` (the worker starts anyway and reports not ready). */
export function waitReady(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.on('ready', onReady);
  });
}
