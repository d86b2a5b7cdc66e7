// The client tools against a real server: `demo` walks through the product,
// `bench` produces a report (text and JSON), `call` sends single requests and
// keeps the login token in a file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/server.js';
import { dropDatabase, openDb } from '../helpers/db.js';
import { uniquePhone } from '../helpers/users.js';
import { BikeService } from '../../src/services/bikes.js';
import { systemClock } from '../../src/clock.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEMO_POINT = { lat: 31.2304, lng: 121.4737 };

let server: TestServer;
let tmp: string;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bikeshare <args>` from source and collects its output (never rejects). */
function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const show = (r: Ran) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

before(async () => {
  server = await startServer({ workers: 1 });
  tmp = mkdtempSync(join(tmpdir(), 'bikeshare-cli-'));
  const db = openDb(server.database);
  try {
    await new BikeService(db, systemClock).seed(5, DEMO_POINT.lat, DEMO_POINT.lng, 300);
  } finally {
    await db.close();
  }
});

after(async () => {
  await server?.stop();
  if (server) await dropDatabase(server.database);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('demo walks through every step and finishes', async () => {
  const r = await cli(['demo', '--port', String(server.port)]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /demo finished/, show(r));
  for (let n = 1; n <= 11; n++) assert.match(r.stdout, new RegExp(`^${n}\\. `, 'm'), `step ${n} missing\n${show(r)}`);
});

test('bench ping prints a report with a non-zero QPS', async () => {
  const r = await cli(['bench', '--scenario', 'ping', '--connections', '4', '--depth', '4', '--duration', '2', '--port', String(server.port)]);
  assert.equal(r.code, 0, show(r));
  const qps = /QPS ([\d.]+)/.exec(r.stdout);
  assert.ok(qps, show(r));
  assert.ok(Number(qps[1]) > 0, show(r));
  assert.match(r.stdout, /latency ms p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +p99\.9 [\d.]+ +max [\d.]+/, show(r));
  assert.match(r.stdout, /errors +0/, show(r));
  assert.match(r.stdout, /generator +CPU \d+% of one core/, show(r));
});

test('bench ping --json prints one JSON object', async () => {
  const r = await cli(['bench', '--scenario', 'ping', '--connections', '4', '--depth', '4', '--duration', '2', '--json', '--port', String(server.port)]);
  assert.equal(r.code, 0, show(r));
  const result = JSON.parse(r.stdout) as { qps: number; requests: number; errors: number; latencyMs: { p50: number; p99: number; max: number }; generatorCpu: { percentOfOneCore: number } };
  assert.ok(result.qps > 0, show(r));
  assert.equal(typeof result.latencyMs.p99, 'number');
  assert.ok(result.latencyMs.p99 > 0 && result.latencyMs.p99 >= result.latencyMs.p50 && result.latencyMs.max >= result.latencyMs.p99, show(r));
  assert.equal(result.errors, 0, show(r));
  assert.equal(typeof result.generatorCpu.percentOfOneCore, 'number');
});

test('bench recharge runs without errors', async () => {
  const r = await cli(['bench', '--scenario', 'recharge', '--duration', '2', '--json', '--port', String(server.port)], { BIKE_MYSQL_URL: server.mysqlUrl });
  assert.equal(r.code, 0, show(r));
  const result = JSON.parse(r.stdout) as { qps: number; errors: number; errorsByCode: Record<string, number> };
  assert.ok(result.qps > 0, show(r));
  assert.equal(result.errors, 0, `errors by code: ${JSON.stringify(result.errorsByCode)}`);
});

test('call ping prints a Pong', async () => {
  const r = await cli(['call', 'ping', '--nonce', '7', '--port', String(server.port)]);
  assert.equal(r.code, 0, show(r));
  const pong = JSON.parse(r.stdout) as { nonce: number | string; serverTimeMs: number | string };
  assert.equal(Number(pong.nonce), 7);
  assert.ok(Math.abs(Number(pong.serverTimeMs) - Date.now()) < 60_000, show(r));
  // Any uint64 nonce comes back digit for digit; anything else is a usage error.
  const max = await cli(['call', 'ping', '--nonce', '18446744073709551615', '--port', String(server.port)]);
  assert.equal(max.code, 0, show(max));
  assert.equal((JSON.parse(max.stdout) as { nonce: string }).nonce, '18446744073709551615');
  for (const bad of ['1e3', '-1', '18446744073709551616']) {
    const r2 = await cli(['call', 'ping', `--nonce=${bad}`, '--port', String(server.port)]);
    assert.equal(r2.code, 2, `--nonce ${bad}: ${show(r2)}`);
  }
});

test('call login keeps the token in the token file and call balance uses it', async () => {
  const tokenFile = join(tmp, 'token');
  const phone = uniquePhone();
  const port = ['--port', String(server.port)];
  const sent = await cli(['call', 'request-code', '--phone', phone, ...port]);
  assert.equal(sent.code, 0, show(sent));
  const code = (JSON.parse(sent.stdout) as { debugCode: string }).debugCode;
  assert.match(code, /^\d{6}$/);

  const login = await cli(['call', 'login', '--phone', phone, '--code', code, '--token-file', tokenFile, ...port]);
  assert.equal(login.code, 0, show(login));
  assert.ok(existsSync(tokenFile), 'token file written');
  const token = readFileSync(tokenFile, 'utf8').trim();
  assert.equal(token, (JSON.parse(login.stdout) as { token: string }).token);

  const balance = await cli(['call', 'balance', '--token-file', tokenFile, ...port]);
  assert.equal(balance.code, 0, show(balance));
  assert.equal(Number((JSON.parse(balance.stdout) as { balanceCents: number | string }).balanceCents), 0);

  // Without the token file the same call is refused.
  const anonymous = await cli(['call', 'balance', '--token-file', join(tmp, 'none'), ...port]);
  assert.equal(anonymous.code, 1, show(anonymous));
  assert.match(anonymous.stderr, /UNAUTHENTICATED/);
});
