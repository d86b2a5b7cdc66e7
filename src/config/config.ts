// Loads the configuration once: defaults, then the JSON file named in
// BIKE_CONFIG, then the environment (which wins). Validation is strict: an
// unknown or bad option stops startup with a message naming it.
import convict from 'convict';
import { schema } from './schema.js';

export interface Config {
  host: string;
  port: number;
  metricsPort: number;
  workers: number;
  migrateOnStart: boolean;
  mysqlUrl: string;
  mysqlPoolSize: number;
  mysqlTxPoolSize: number;
  redisUrl: string;
  storeTimeoutMs: number;
  smsSender: 'log' | 'echo';
  logLevel: string;
  maxBodyBytes: number;
  maxInflightPerConnection: number;
  maxConnectionsPerWorker: number;
  maxWriteBufferBytes: number;
  idleTimeoutMs: number;
  shutdownTimeoutMs: number;
  restartBackoffMs: number;
  maxRestartsPerMinute: number;
  metricsScrapeTimeoutMs: number;
  codeTtlSeconds: number;
  codeResendSeconds: number;
  codeMaxAttempts: number;
  tokenTtlSeconds: number;
  codeRequestsPerAddressPerMinute: number;
  loginFailuresPerPhonePerHour: number;
  minUnlockBalanceCents: number;
  fareBaseCents: number;
  fareBaseSeconds: number;
  fareStepCents: number;
  fareStepSeconds: number;
  tlsCertFile: string;
  tlsKeyFile: string;
}

export class ConfigError extends Error {}

/** `env` defaults to process.env; nothing else in the service reads the environment. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const conf = convict(schema as unknown as convict.Schema<Config>, { env: env as Record<string, string> });
  try {
    if (env.BIKE_CONFIG) conf.loadFile(env.BIKE_CONFIG);
    conf.load(overrides);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const config = conf.getProperties();
  if (config.smsSender === 'echo' && env.NODE_ENV === 'production') {
    throw new ConfigError('invalid configuration: smsSender: "echo" puts codes in replies and is refused when NODE_ENV=production');
  }
  if (Boolean(config.tlsCertFile) !== Boolean(config.tlsKeyFile)) {
    throw new ConfigError('invalid configuration: tlsCertFile and tlsKeyFile go together');
  }
  return config;
}
