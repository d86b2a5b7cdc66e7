// Starts the real service (primary + workers, as processes) on free ports
// with a database of its own, and stops it. Every e2e test goes through here.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MYSQL_BASE = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

export function testDatabaseName(): string {
  return `bikeshare_test_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export function mysqlUrlFor(database: string): string {
  return new URL(database, MYSQL_BASE).toString();
}

export interface TestServer {
  port: number;
  metricsPort: number;
  database: string;
  mysqlUrl: string;
  process: ChildProcess;
  /** stdout and stderr lines so far */
  output: string[];
  /** resolves with the exit code once the primary has exited */
  exited: Promise<number | null>;
  metricsUrl(path: string): string;
  /** SIGTERM (default) and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  workers?: number;
  env?: Record<string, string>;
  /** reuse a database (e.g. a second server on the same data) */
  database?: string;
  port?: number;
  readyTimeoutMs?: number;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const metricsPort = await freePort();
  const database = options.database ?? testDatabaseName();
  const mysqlUrl = mysqlUrlFor(database);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      BIKE_HOST: '127.0.0.1',
      BIKE_PORT: String(port),
      BIKE_METRICS_PORT: String(metricsPort),
      BIKE_WORKERS: String(options.workers ?? 2),
      BIKE_MYSQL_URL: mysqlUrl,
      BIKE_REDIS_URL: REDIS_URL,
      BIKE_SMS_SENDER: 'echo',
      BIKE_LOG_LEVEL: 'warn',
      BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE: '0',
      BIKE_CODE_RESEND_SECONDS: '0',
      BIKE_MYSQL_POOL_SIZE: '8',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const server: TestServer = {
    port,
    metricsPort,
    database,
    mysqlUrl,
    process: child,
    output,
    exited,
    metricsUrl: (path) => `http://127.0.0.1:${metricsPort}${path}`,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output.join('\n')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in time:\n${output.join('\n')}`);
    }
    const ok = await fetch(server.metricsUrl('/readyz')).then((r) => r.status === 200, () => false);
    if (ok) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
}
