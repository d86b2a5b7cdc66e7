// Tells "the store cannot be reached" (the request may be retried:
import { ServiceUnavailableError } from '../errors.js';
// SERVICE_UNAVAILABLE) from everything else (a bug or a real SQL error).
const MYSQL_UNREACHABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_CON_COUNT_ERROR', 'ER_LOCK_WAIT_TIMEOUT', 'ER_SERVER_SHUTDOWN', 'ER_QUERY_INTERRUPTED',
]);

export function isMysqlUnreachable(err: unknown): boolean {
  const e = err as { code?: string; fatal?: boolean; message?: string };
  if (!e || typeof e !== 'object') return false;
  if (e.fatal === true || (e.code !== undefined && MYSQL_UNREACHABLE.has(e.code))) return true;
  return typeof e.message === 'string' && /Pool is closed|Can't add new command when connection is in closed state|connect ETIMEDOUT/.test(e.message);
}

/** ioredis: a ReplyError is Redis saying no (a bug); anything else is the connection. */
export function isRedisUnreachable(err: unknown): boolean {
  return err instanceof Error && err.name !== 'ReplyError';
}

/** Awaits a Redis call, turning connection failures into SERVICE_UNAVAILABLE. */
export async function viaRedis<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (isRedisUnreachable(err)) throw new ServiceUnavailableError('cache unreachable', { cause: err });
    throw err;
  }
}
