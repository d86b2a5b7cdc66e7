// pino, one logger per process. Lifecycle at info, per-frame paths at debug
// (guarded by isLevelEnabled on the hot path), errors with their context.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    // Tokens and store credentials must never reach a log line, whatever a caller passes.
    redact: { paths: ['token', '*.token', 'mysqlUrl', 'redisUrl', '*.mysqlUrl', '*.redisUrl'], censor: '[redacted]' },
  });
}

/** "+8613800138000" -> "+86*******8000": enough to tell numbers apart in a log, not to call them. */
export function maskPhone(phone: string): string {
  if (phone.length <= 6) return '*'.repeat(phone.length);
  return phone.slice(0, 3) + '*'.repeat(phone.length - 7) + phone.slice(-4);
}
