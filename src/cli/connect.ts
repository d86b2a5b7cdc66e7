// Connection flags shared by the client commands: --host, --port, --tls, --ca.
import { readFileSync } from 'node:fs';
import type { ClientOptions } from '../client/client.js';

export const connectFlags = {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string' },
  tls: { type: 'boolean', default: false },
  ca: { type: 'string' },
  'insecure-skip-verify': { type: 'boolean', default: false },
} as const;

export function clientOptions(values: { host?: string; port?: string; tls?: boolean; ca?: string; 'insecure-skip-verify'?: boolean }, env = process.env): ClientOptions {
  const port = Number(values.port ?? env.BIKE_PORT ?? 7000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: not a port (${values.port})`);
  const tls = values.tls ? { ca: values.ca ? readFileSync(values.ca) : undefined, rejectUnauthorized: !values['insecure-skip-verify'] } : undefined;
  return { host: values.host ?? '127.0.0.1', port, tls };
}
