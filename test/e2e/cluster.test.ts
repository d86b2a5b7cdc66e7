// The cluster as a whole, as an operator sees it: a SIGTERM drain that
// answers everything, a worker killed with -9 under load and replaced, and a
// second SIGTERM that forces the exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { REDIS_URL, startServer, type TestServer } from '../helpers/server.js';
import { dropDatabase } from '../helpers/db.js';
import { connect, uniquePhone } from '../helpers/users.js';
import { BikeClient, ClientError, ServerError, ErrorCode } from '../../src/client/client.js';
import { Framer } from '../../src/protocol/framer.js';
import { encodeFrame } from '../../src/protocol/header.js';
import { codec } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/types.js';
import { NoticeKind, type ServerNotice } from '../../src/protocol/messages.js';

const WAIT_MS = 30_000; // failure bound only

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; fails after WAIT_MS. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, boundMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Resolves with the exit code, or rejects if the process has not exited within `boundMs`. */
async function exitWithin(server: TestServer, boundMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`primary still running ${boundMs} ms after the signal:\n${server.output.slice(-20).join('\n')}`)), boundMs);
  });
  try {
    return await Promise.race([server.exited, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Worker process ids: the primary's children that run the service (not tsx's esbuild helper). */
function workerPids(primaryPid: number): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(primaryPid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there is no child
  }
  return out
    .split('\n')
    .filter((l) => l.includes('src/main.ts'))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .sort((a, b) => a - b);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function status(server: TestServer, path: string): Promise<number> {
  return fetch(server.metricsUrl(path)).then(
    (r) => r.status,
    () => 0, // not listening (any more)
  );
}

async function metric(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(server.metricsUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

test('SIGTERM drains: every request sent before it is answered, clients get the notice, /readyz is 503, exit 0', async (t) => {
  const shutdownTimeoutMs = 8000;
  const server = await startServer({ workers: 2, env: { BIKE_SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) } });
  try {
    // drainRetries 0: a SHUTTING_DOWN answer reaches us as is instead of being retried elsewhere.
    // maxInflight high: every request is written to the socket before the signal.
    const clients: BikeClient[] = [];
    for (let i = 0; i < 8; i++) clients.push(await connect(server.port, { drainRetries: 0, maxInflight: 100_000, timeoutMs: 60_000 }));
    for (const c of clients) await c.ping(1); // connected and accepted
    const notices = clients.map(() => [] as ServerNotice[]);
    clients.forEach((c, i) => c.on('notice', (n: ServerNotice) => notices[i].push(n)));

    // Load that never lets up: every connection keeps WINDOW requests in flight
    // (pings and RequestCodes for distinct phones; more than the server reads
    // at once, so some wait unread in its buffers), topping up on every answer
    // until its ServerNotice arrives. So hundreds are in flight at the signal.
    const WINDOW = 300;
    let signalled = false;
    let outstanding = 0;
    let answered = 0;
    let seq = 0;
    const sentBefore: Promise<string>[] = [];
    const sentAfter: Promise<string>[] = [];
    const send = (i: number): void => {
      if (notices[i].length > 0) return; // the server said it is draining: send nothing more here
      const n = ++seq;
      outstanding++;
      const call = n % 2 === 0 ? clients[i].ping(n) : clients[i].requestCode(uniquePhone());
      const outcome = call
        .then(
          () => 'OK',
          (err: unknown) => (err instanceof ServerError || err instanceof ClientError ? err.codeName : String(err)),
        )
        .finally(() => {
          outstanding--;
          answered++;
          send(i);
        });
      (signalled ? sentAfter : sentBefore).push(outcome);
    };
    clients.forEach((_, i) => {
      for (let k = 0; k < WINDOW; k++) send(i);
    });
    await waitFor('the load to run', () => answered > 5000);

    // Watch /readyz from the signal until the primary has exited.
    const readyz: number[] = [];
    let exited = false;
    const watcher = (async () => {
      while (!exited) {
        const s = await status(server, '/readyz');
        if (!exited && s !== 0) readyz.push(s);
        await sleep(20);
      }
    })();

    signalled = true;
    const inFlightAtSignal = outstanding;
    server.process.kill('SIGTERM');
    const code = await exitWithin(server, shutdownTimeoutMs + 15_000);
    exited = true;
    await watcher;

    const tally = (results: string[]) => {
      const counts: Record<string, number> = {};
      for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
      return counts;
    };
    const counts = tally(await Promise.all(sentBefore));
    const countsAfter = tally(await Promise.all(sentAfter));
    t.diagnostic(`in flight at the signal: ${inFlightAtSignal}; answers to requests sent before it: ${JSON.stringify(counts)}`);
    t.diagnostic(`sent after the signal, before the notice: ${JSON.stringify(countsAfter)}; readyz seen: ${JSON.stringify([...new Set(readyz)])}`);
    assert.equal(inFlightAtSignal, clients.length * WINDOW, 'every connection had its window in flight');
    assert.deepEqual(
      Object.keys(counts).filter((k) => k !== 'OK' && k !== 'SHUTTING_DOWN'),
      [],
      'only replies and SHUTTING_DOWN: nothing left unanswered or CLOSED',
    );

    assert.equal(code, 0, `the primary exits 0:\n${server.output.slice(-20).join('\n')}`);
    for (const [i, n] of notices.entries()) {
      assert.ok(n.length >= 1, `client ${i} got the ServerNotice`);
      assert.equal(n[0].kind, NoticeKind.SHUTTING_DOWN);
    }
    assert.ok(readyz.includes(503), '/readyz answered 503 during the drain');
    assert.ok(!readyz.slice(readyz.indexOf(503)).includes(200), 'and never 200 again after that');
    for (const c of clients) c.close();
  } finally {
    await server.stop('SIGKILL');
    await dropDatabase(server.database);
  }
});

test('SDK defaults in a drain: requests queued behind its in-flight bound are refused SHUTTING_DOWN, never lost', async (t) => {
  // The SDK sends at most 64 at once per connection; the rest wait in its
  // queue. Once the notice came they must not be written to the draining
  // connection (whose server may FIN before reading them) but refused like
  // the server would, with SHUTTING_DOWN (no effect, safe to send elsewhere).
  const server = await startServer({ workers: 2 });
  try {
    const clients: BikeClient[] = [];
    for (let i = 0; i < 4; i++) clients.push(await connect(server.port, { drainRetries: 0, timeoutMs: 60_000 }));
    let answered = 0;
    const outcomes = clients.flatMap((c) =>
      Array.from({ length: 1000 }, (_, j) =>
        (j % 2 === 0 ? c.ping(j) : c.requestCode(uniquePhone())).then(
          () => (answered++, 'OK'),
          (err: unknown) => (answered++, err instanceof ServerError || err instanceof ClientError ? err.codeName : String(err)),
        ),
      ),
    );
    await waitFor('the first answers', () => answered >= 200);
    server.process.kill('SIGTERM');
    assert.equal(await exitWithin(server, 30_000), 0);
    const counts: Record<string, number> = {};
    for (const r of await Promise.all(outcomes)) counts[r] = (counts[r] ?? 0) + 1;
    t.diagnostic(`answers: ${JSON.stringify(counts)}`);
    assert.deepEqual(
      Object.keys(counts).filter((k) => k !== 'OK' && k !== 'SHUTTING_DOWN'),
      [],
      'only replies and SHUTTING_DOWN',
    );
    for (const c of clients) c.close();
  } finally {
    await server.stop('SIGKILL');
    await dropDatabase(server.database);
  }
});

/** A TCP proxy to Redis that can hold back Redis's answers (a store that hangs, not one that is down). */
class StallProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; held: Buffer[] }>();
  private stalled = false;
  port = 0;

  constructor(targetPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      const pair = { client, held: [] as Buffer[] };
      this.pairs.add(pair);
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => (this.stalled ? pair.held.push(d) : client.write(d)));
      const both = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', both).on('close', both);
      upstream.on('error', both).on('close', both);
    });
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  stall(): void {
    this.stalled = true;
  }

  release(): void {
    this.stalled = false;
    for (const pair of this.pairs) for (const d of pair.held.splice(0)) pair.client.write(d);
  }

  close(): void {
    for (const pair of this.pairs) pair.client.destroy();
    this.server.close();
  }
}

test('drain with a slow request in flight and the rest of a pipeline not yet read: every request is answered', async (t) => {
  // One request in flight per connection: a RequestCode whose Redis answer is
  // held back keeps the server from reading the pings pipelined behind it.
  // The drain must still answer those pings (SHUTTING_DOWN is fine), not FIN
  // over them once the slow request is done.
  const proxy = new StallProxy(Number(new URL(REDIS_URL).port || 6379));
  await proxy.listen();
  const server = await startServer({
    workers: 1,
    env: {
      BIKE_REDIS_URL: `redis://127.0.0.1:${proxy.port}/0`,
      BIKE_MAX_INFLIGHT_PER_CONNECTION: '1',
      BIKE_STORE_TIMEOUT_MS: '20000',
      BIKE_SHUTDOWN_TIMEOUT_MS: '15000',
    },
  });
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  try {
    await once(socket, 'connect');
    socket.on('error', () => undefined);
    const frames: { type: number; requestId: number; body: Buffer }[] = [];
    let closed = false;
    const framer = new Framer(1 << 20);
    socket.on('data', (chunk: Buffer) => framer.push(chunk, (type, requestId, body) => (frames.push({ type, requestId, body: Buffer.from(body) }), true)));
    socket.on('close', () => (closed = true));
    socket.write(encodeFrame(MessageType.Ping, 1, codec('Ping').encode({ nonce: 1 })));
    await waitFor('the first pong', () => frames.length === 1);

    proxy.stall();
    const pings = 100;
    const pipeline = [encodeFrame(MessageType.RequestCode, 2, codec('RequestCode').encode({ phone: uniquePhone() }))];
    for (let i = 0; i < pings; i++) pipeline.push(encodeFrame(MessageType.Ping, 3 + i, codec('Ping').encode({ nonce: i })));
    socket.write(Buffer.concat(pipeline));
    await sleep(300); // let the server read the RequestCode and stop reading

    server.process.kill('SIGTERM');
    await waitFor('the ServerNotice', () => frames.some((f) => f.type === MessageType.ServerNotice));
    await sleep(1000); // past the drain's grace period, with the RequestCode still in flight
    proxy.release();
    await waitFor('the server to close the connection', () => closed);
    const code = await exitWithin(server, 30_000);

    const errorCodec = codec<{ code: number }>('Error');
    const answers = new Map<number, string>();
    for (const f of frames) {
      if (f.requestId === 0) continue;
      answers.set(f.requestId, f.type === MessageType.Error ? ErrorCode[errorCodec.decode(f.body).code] : `0x${f.type.toString(16)}`);
    }
    const counts: Record<string, number> = {};
    for (const a of answers.values()) counts[a] = (counts[a] ?? 0) + 1;
    t.diagnostic(`answers: ${JSON.stringify(counts)}`);
    assert.equal(answers.get(2), '0x8010', 'the slow RequestCode is answered');
    for (let i = 0; i < pings; i++) {
      const a = answers.get(3 + i);
      assert.ok(a === '0x8002' || a === 'SHUTTING_DOWN', `ping ${3 + i} answered (got ${a})`);
    }
    assert.equal(code, 0);
  } finally {
    socket.destroy();
    proxy.close();
    await server.stop('SIGKILL');
    await dropDatabase(server.database);
  }
});

test('kill -9 of a worker under load: a new worker replaces it and the service keeps answering', async (t) => {
  const server = await startServer({ workers: 2 });
  let running = true;
  const pingers: Promise<void>[] = [];
  try {
    const before = workerPids(server.process.pid!);
    assert.equal(before.length, 2, `two workers: ${before}`);

    // Clients that keep pinging, reconnecting whenever their connection breaks.
    let ok = 0;
    let failed = 0;
    const pinger = async () => {
      let client: BikeClient | null = null;
      while (running) {
        try {
          client ??= await connect(server.port, { timeoutMs: 5000 });
          await client.ping(ok);
          ok++;
        } catch {
          failed++;
          client?.connection.destroy();
          client = null;
          await sleep(20);
        }
      }
      client?.close();
    };
    for (let i = 0; i < 6; i++) pingers.push(pinger());
    await waitFor('pings before the kill', () => ok > 200);

    const victim = before[0];
    process.kill(victim, 'SIGKILL');
    await waitFor('a new worker', () => {
      const now = workerPids(server.process.pid!);
      return now.length === 2 && !now.includes(victim);
    });
    const after = workerPids(server.process.pid!);
    assert.ok(after.includes(before[1]), 'the other worker was left alone');
    await waitFor('/readyz 200 again', async () => (await status(server, '/readyz')) === 200);

    const okAtRestart = ok;
    await waitFor('pings after the restart', () => ok > okAtRestart + 200);
    t.diagnostic(`pings ok ${ok}, failed ${failed} (connections on the killed worker)`);

    // New connections are answered (the round robin reaches both workers).
    const fresh = await Promise.all(Array.from({ length: 10 }, () => connect(server.port)));
    const pongs = await Promise.all(fresh.map((c, i) => c.ping(1000 + i)));
    assert.deepEqual(
      pongs.map((p) => p.nonce),
      Array.from({ length: 10 }, (_, i) => 1000 + i),
    );
    for (const c of fresh) c.close();

    assert.ok((await metric(server, 'bike_worker_restarts_total')) >= 1, 'bike_worker_restarts_total >= 1');
    assert.equal(await metric(server, 'bike_workers_live'), 2);
  } finally {
    running = false;
    await Promise.all(pingers);
    await server.stop('SIGTERM');
    await dropDatabase(server.database);
  }
});

test('a second SIGTERM during a drain forces the exit at once, non-zero, and kills the workers', async () => {
  // A drain budget far beyond the test's bound: only the second signal can end it in time.
  const server = await startServer({ workers: 2, env: { BIKE_SHUTDOWN_TIMEOUT_MS: '120000' } });
  const socket = net.connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
  try {
    const workers = workerPids(server.process.pid!);
    assert.equal(workers.length, 2);
    await once(socket, 'connect');
    socket.on('error', () => undefined);
    const frames: { type: number; requestId: number; body: Buffer }[] = [];
    let fin = false;
    const framer = new Framer(1 << 20);
    socket.on('data', (chunk: Buffer) => framer.push(chunk, (type, requestId, body) => (frames.push({ type, requestId, body: Buffer.from(body) }), true)));
    socket.on('end', () => (fin = true));
    socket.write(encodeFrame(MessageType.Ping, 1, codec('Ping').encode({ nonce: 1 })));
    await waitFor('the pong', () => frames.length === 1);

    // This client never closes its side: the drain of its worker cannot finish on its own.
    server.process.kill('SIGTERM');
    await waitFor('the ServerNotice', () => frames.some((f) => f.type === MessageType.ServerNotice && f.requestId === 0));
    await waitFor('the server half-close', () => fin);
    assert.equal(await status(server, '/readyz'), 503, 'draining');
    assert.equal(server.process.exitCode, null, 'still draining');

    server.process.kill('SIGTERM');
    const code = await exitWithin(server, 20_000);
    assert.notEqual(code, 0, 'a forced exit is not a clean one');
    await waitFor('the workers to be gone', () => workers.every((pid) => !alive(pid)), 10_000);
  } finally {
    socket.destroy();
    await server.stop('SIGKILL');
    await dropDatabase(server.database);
  }
});
