// The one documented list of options. Each option's env name is BIKE_ + its
// name in upper snake case; docs/configuration.md is generated from this list
// (`npx bikeshare config --markdown`).
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';

/**
 * One worker per core the process may really use: the cgroup v2 CPU quota
 * (a container's CPU limit) when there is one, else the cores of the machine.
 */
export function usableCores(cpuMax = '/sys/fs/cgroup/cpu.max'): number {
  const cores = availableParallelism();
  try {
    const [quota, period] = readFileSync(cpuMax, 'utf8').trim().split(/\s+/);
    if (quota === 'max') return cores;
    return Math.max(1, Math.min(cores, Math.ceil(Number(quota) / Number(period))));
  } catch {
    return cores;
  }
}

const positive = (name: string) => (v: unknown) => {
  if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${name} must be a positive integer`);
};
const nonNegative = (name: string) => (v: unknown) => {
  if (!Number.isInteger(v) || (v as number) < 0) throw new Error(`${name} must be an integer >= 0`);
};
const port = (v: unknown) => {
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) throw new Error('must be a port 0..65535');
};
const url = (protocols: string[]) => (v: unknown) => {
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new Error(`must be a URL (${protocols.join(' or ')})`);
  }
  if (!protocols.includes(u.protocol)) throw new Error(`must use ${protocols.join(' or ')}`);
};

export const schema = {
  host: { doc: 'Address the protocol port binds to.', format: String, default: '0.0.0.0', env: 'BIKE_HOST' },
  port: { doc: 'Protocol (TCP) port.', format: port, default: 7000, env: 'BIKE_PORT' },
  metricsPort: { doc: 'HTTP port of /metrics, /healthz and /readyz (served by the primary).', format: port, default: 9464, env: 'BIKE_METRICS_PORT' },
  workers: { doc: 'Worker processes (reactors); default one per usable core (the container CPU limit if there is one).', format: positive('workers'), default: usableCores(), env: 'BIKE_WORKERS' },
  migrateOnStart: { doc: 'Apply schema migrations when the service starts (turn off to run `bikeshare migrate` as a separate job with DDL rights).', format: Boolean, default: true, env: 'BIKE_MIGRATE_ON_START' },
  mysqlUrl: { doc: 'MySQL/MariaDB URL; its database is created and migrated on start.', format: url(['mysql:']), default: 'mysql://root@127.0.0.1:3306/bikeshare', env: 'BIKE_MYSQL_URL', sensitive: true },
  mysqlPoolSize: { doc: 'MySQL connections per worker for single statements (reads, the login upsert).', format: positive('mysqlPoolSize'), default: 8, env: 'BIKE_MYSQL_POOL_SIZE' },
  mysqlTxPoolSize: { doc: 'MySQL connections per worker for transactions (money and rides); they run with autocommit off, so a transaction costs no BEGIN round trip. A worker opens at most mysqlPoolSize + mysqlTxPoolSize.', format: positive('mysqlTxPoolSize'), default: 8, env: 'BIKE_MYSQL_TX_POOL_SIZE' },
  redisUrl: { doc: 'Redis URL (sessions, codes, rate limits).', format: url(['redis:', 'rediss:']), default: 'redis://127.0.0.1:6379/0', env: 'BIKE_REDIS_URL', sensitive: true },
  storeTimeoutMs: { doc: 'Bound on one MySQL/Redis call (and on connecting); past it the request gets SERVICE_UNAVAILABLE.', format: positive('storeTimeoutMs'), default: 3000, env: 'BIKE_STORE_TIMEOUT_MS' },
  smsSender: { doc: 'How codes are delivered: "log" (code in the log, phone masked) or "echo" (code in RequestCodeReply.debug_code; refused when NODE_ENV=production).', format: ['log', 'echo'], default: 'log', env: 'BIKE_SMS_SENDER' },
  logLevel: { doc: 'pino level: lifecycle at info, per-frame paths at debug. Use warn in production.', format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', env: 'BIKE_LOG_LEVEL' },
  maxBodyBytes: { doc: 'Largest accepted frame body; a larger announced length gets FRAME_TOO_LARGE and a close.', format: positive('maxBodyBytes'), default: 65536, env: 'BIKE_MAX_BODY_BYTES' },
  maxInflightPerConnection: { doc: 'Requests of one connection handled at once; beyond it the server stops reading that socket.', format: positive('maxInflightPerConnection'), default: 64, env: 'BIKE_MAX_INFLIGHT_PER_CONNECTION' },
  maxConnectionsPerWorker: { doc: 'Open connections per worker; one more gets SERVICE_UNAVAILABLE and is closed.', format: positive('maxConnectionsPerWorker'), default: 10000, env: 'BIKE_MAX_CONNECTIONS_PER_WORKER' },
  maxWriteBufferBytes: { doc: 'Unsent answer bytes a connection may hold (a client that does not read); past it the connection is closed.', format: (v: unknown) => { if (!Number.isInteger(v) || (v as number) < 1048576) throw new Error('must be an integer >= 1048576 (1 MiB)'); }, default: 4194304, env: 'BIKE_MAX_WRITE_BUFFER_BYTES' },
  idleTimeoutMs: { doc: 'Close a connection whose incomplete frame is older than this, or that sent nothing and awaits nothing for this long.', format: positive('idleTimeoutMs'), default: 60000, env: 'BIKE_IDLE_TIMEOUT_MS' },
  shutdownTimeoutMs: { doc: 'Whole drain budget after SIGTERM; then workers are killed.', format: positive('shutdownTimeoutMs'), default: 10000, env: 'BIKE_SHUTDOWN_TIMEOUT_MS' },
  restartBackoffMs: { doc: 'First delay before restarting a dead worker; doubles per quick death up to 30 s.', format: positive('restartBackoffMs'), default: 100, env: 'BIKE_RESTART_BACKOFF_MS' },
  maxRestartsPerMinute: { doc: 'Crash-loop cap: more worker deaths than this within a minute stops restarts; with no worker left the primary exits 1.', format: positive('maxRestartsPerMinute'), default: 30, env: 'BIKE_MAX_RESTARTS_PER_MINUTE' },
  metricsScrapeTimeoutMs: { doc: 'How long /metrics waits for each worker; late workers are left out and counted in bike_metrics_workers_missing.', format: positive('metricsScrapeTimeoutMs'), default: 2000, env: 'BIKE_METRICS_SCRAPE_TIMEOUT_MS' },
  codeTtlSeconds: { doc: 'Verification code lifetime.', format: positive('codeTtlSeconds'), default: 300, env: 'BIKE_CODE_TTL_SECONDS' },
  codeResendSeconds: { doc: 'Minimum time between two codes for one phone.', format: nonNegative('codeResendSeconds'), default: 60, env: 'BIKE_CODE_RESEND_SECONDS' },
  codeMaxAttempts: { doc: 'Wrong tries after which a code is void.', format: positive('codeMaxAttempts'), default: 5, env: 'BIKE_CODE_MAX_ATTEMPTS' },
  tokenTtlSeconds: { doc: 'Session token lifetime, fixed at login.', format: positive('tokenTtlSeconds'), default: 2592000, env: 'BIKE_TOKEN_TTL_SECONDS' },
  codeRequestsPerAddressPerMinute: { doc: 'Successful RequestCodes per remote IP per 60 s (0 = off).', format: nonNegative('codeRequestsPerAddressPerMinute'), default: 60, env: 'BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE' },
  loginFailuresPerPhonePerHour: { doc: 'CODE_INVALID answers per phone per hour before RATE_LIMITED (0 = off).', format: nonNegative('loginFailuresPerPhonePerHour'), default: 20, env: 'BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR' },
  minUnlockBalanceCents: { doc: 'Balance needed to unlock a bike.', format: nonNegative('minUnlockBalanceCents'), default: 100, env: 'BIKE_MIN_UNLOCK_BALANCE_CENTS' },
  fareBaseCents: { doc: 'Fare of the first period.', format: nonNegative('fareBaseCents'), default: 150, env: 'BIKE_FARE_BASE_CENTS' },
  fareBaseSeconds: { doc: 'Length of the first period.', format: nonNegative('fareBaseSeconds'), default: 1800, env: 'BIKE_FARE_BASE_SECONDS' },
  fareStepCents: { doc: 'Fare of each started period after the first.', format: nonNegative('fareStepCents'), default: 100, env: 'BIKE_FARE_STEP_CENTS' },
  fareStepSeconds: { doc: 'Length of each later period.', format: positive('fareStepSeconds'), default: 1800, env: 'BIKE_FARE_STEP_SECONDS' },
  tlsCertFile: { doc: 'PEM certificate; with tlsKeyFile, the protocol port speaks TLS (same framing inside).', format: String, default: '', env: 'BIKE_TLS_CERT_FILE' },
  tlsKeyFile: { doc: 'PEM private key for tlsCertFile.', format: String, default: '', env: 'BIKE_TLS_KEY_FILE' },
};

export type OptionName = keyof typeof schema;
