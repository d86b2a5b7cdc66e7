// TLS on the protocol port (BIKE_TLS_CERT_FILE + BIKE_TLS_KEY_FILE), with a
// self-signed certificate made at test time: the SDK with the CA pings and
// logs in, a plain-TCP client gets no frame (closed), an SDK that does not
// trust the certificate cannot connect, and the CLI works with --tls --ca.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BikeClient, ClientError } from '../../src/client/client.js';
import { MessageType } from '../../src/protocol/types.js';
import { RawConn, frameOf } from '../../drills/lib/raw.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { dropDatabase } from '../helpers/db.js';
import { uniquePhone } from '../helpers/users.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let server: TestServer;
let ca: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bikeshare-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1',
  ], { stdio: 'pipe' });
  ca = readFileSync(join(dir, 'cert.pem'));
  server = await startServer({ workers: 2, env: { BIKE_TLS_CERT_FILE: join(dir, 'cert.pem'), BIKE_TLS_KEY_FILE: join(dir, 'key.pem') } });
});

after(async () => {
  await server?.stop();
  if (server) await dropDatabase(server.database);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the SDK over TLS with the CA pings and logs in', async () => {
  const client = await BikeClient.connect({ host: '127.0.0.1', port: server.port, tls: { ca }, timeoutMs: 10_000 });
  try {
    const pong = await client.ping(12345);
    assert.equal(pong.nonce, 12345);
    const phone = uniquePhone();
    const sent = await client.requestCode(phone);
    const login = await client.login(phone, sent.debugCode);
    assert.ok(login.token.length > 0 && login.userId > 0);
    const r = await client.recharge(250, 'tls-1');
    assert.equal(r.balanceCents, 250);
    assert.equal(await client.balance(), 250);
  } finally {
    client.close();
  }
  // By name too (the certificate's DNS name).
  const byName = await BikeClient.connect({ host: 'localhost', port: server.port, tls: { ca }, timeoutMs: 10_000 });
  try {
    assert.equal((await byName.ping(1)).nonce, 1);
  } finally {
    byName.close();
  }
});

test('a plain-TCP client gets no valid frame and is closed', async () => {
  const conn = await RawConn.open(server.port);
  conn.write(frameOf(MessageType.Ping, 1, 'Ping', { nonce: 1 }));
  const closed = await conn.waitClosed(15_000);
  assert.ok(closed, 'the plain connection was not closed');
  assert.equal(conn.frames.length, 0, 'a plain-TCP client must not get a protocol frame');
});

test('an SDK that does not trust the certificate cannot connect', async () => {
  const err = await BikeClient.connect({ host: '127.0.0.1', port: server.port, tls: true, connectTimeoutMs: 10_000 }).then(
    (c) => {
      c.close();
      return null;
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ClientError && err.code === 'CONNECT_FAILED', `expected CONNECT_FAILED, got ${String(err)}`);
});

test('the CLI: call ping --tls --ca <file> --port <port>', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'call', 'ping', '--tls', '--ca', join(dir, 'cert.pem'), '--port', String(server.port), '--nonce', '77', '--token-file', join(dir, 'token')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let errOut = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (errOut += c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `exit ${code}: ${errOut}`);
  const pong = JSON.parse(out) as { nonce: number | string; serverTimeMs: number | string };
  assert.equal(Number(pong.nonce), 77); // 64-bit fields may print as strings
  assert.ok(Number(pong.serverTimeMs) > 0);
});
