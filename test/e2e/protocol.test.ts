// The wire protocol against real server processes (primary + workers):
// pipelining, framing errors and what the server does after them, request
// errors, idle closing, per-connection backpressure, the connection limit,
// and the metrics counting the rejects.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startServer, type TestServer } from '../helpers/server.js';
import { dropDatabase } from '../helpers/db.js';
import { connect, loggedIn, uniquePhone } from '../helpers/users.js';
import { Framer } from '../../src/protocol/framer.js';
import { encodeFrame, HEADER_BYTES, MAGIC } from '../../src/protocol/header.js';
import { codec } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/types.js';
import { ErrorCode, type ErrorMessage, type Pong } from '../../src/protocol/messages.js';
import { ServerError } from '../../src/client/client.js';

const errorCodec = codec<ErrorMessage>('Error');
const pingCodec = codec<{ nonce: number }>('Ping');
const pongCodec = codec<Pong>('Pong');
const PONG = MessageType.Ping | 0x8000;
const WAIT_MS = 20_000; // failure bound only

interface Frame {
  type: number;
  requestId: number;
  body: Buffer;
}

/** A raw TCP client: writes bytes, collects the frames it gets, notices FIN and close. */
class RawClient {
  readonly frames: Frame[] = [];
  /** bytes received that were not frames (must stay 0) */
  fault: string | null = null;
  gotFin = false;
  closed = false;
  private readonly framer = new Framer(1 << 30);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const f = this.framer.push(chunk, (type, requestId, body) => {
        this.frames.push({ type, requestId, body: Buffer.from(body) });
        return true;
      });
      if (f) this.fault = f.kind;
      this.wake();
    });
    socket.on('end', () => {
      this.gotFin = true;
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? true });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves once `predicate` holds (checked on every event); rejects after WAIT_MS. */
  async until(predicate: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.frames.length} frames, fin=${this.gotFin}, closed=${this.closed}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async ping(requestId: number, nonce: number): Promise<void> {
    const start = this.frames.length;
    this.write(encodeFrame(MessageType.Ping, requestId, pingCodec.encode({ nonce })));
    await this.until(() => this.frames.slice(start).some((f) => f.requestId === requestId), `pong ${requestId}`);
    const answer = this.frames.slice(start).find((f) => f.requestId === requestId)!;
    assert.equal(answer.type, PONG, 'ping answered with Pong');
    assert.equal(pongCodec.decode(answer.body).nonce, nonce);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

const pingFrame = (requestId: number, nonce: number) => encodeFrame(MessageType.Ping, requestId, pingCodec.encode({ nonce }));

function header(type: number, requestId: number, length: number, magic = MAGIC): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt16BE(magic, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(requestId, 4);
  h.writeUInt32BE(length, 8);
  return h;
}

function decodeError(frame: Frame): ErrorMessage {
  assert.equal(frame.type, MessageType.Error, `an Error frame, got type 0x${frame.type.toString(16)}`);
  return errorCodec.decode(frame.body);
}

/** The value of one series of a metric in Prometheus text, 0 when absent. */
async function metric(server: TestServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(server.metricsUrl('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function stopAndDrop(server: TestServer | undefined): Promise<void> {
  if (!server) return;
  await server.stop('SIGTERM');
  await dropDatabase(server.database);
}

describe('protocol on a default server (2 workers)', () => {
  let server: TestServer;
  const raws: RawClient[] = [];
  const open = async () => {
    const r = await RawClient.open(server.port);
    raws.push(r);
    return r;
  };
  // The rejects this suite causes, to compare with /metrics at the end.
  const rejected = { bad_magic: 0, too_large: 0, unknown_type: 0, bad_request: 0 };

  before(async () => {
    server = await startServer({ workers: 2 });
  });
  after(async () => {
    for (const r of raws) r.destroy();
    await stopAndDrop(server);
  });

  test('1000 pipelined pings written in one go are all answered with their requestIds and nonces', async () => {
    const raw = await open();
    const nonce = (id: number) => id * 1_000_003 + 2 ** 40;
    raw.write(Buffer.concat(Array.from({ length: 1000 }, (_, i) => pingFrame(i + 1, nonce(i + 1)))));
    await raw.until(() => raw.frames.length >= 1000, '1000 answers');
    const seen = new Set<number>();
    for (const f of raw.frames) {
      assert.equal(f.type, PONG);
      assert.equal(pongCodec.decode(f.body).nonce, nonce(f.requestId), `nonce of ${f.requestId}`);
      seen.add(f.requestId);
    }
    assert.equal(seen.size, 1000, 'each requestId answered once');
    assert.ok([...seen].every((id) => id >= 1 && id <= 1000));
    assert.equal(raw.fault, null);
    assert.equal(raw.gotFin, false, 'the connection stays open');
  });

  test('50 connections at once, each pinging, are all answered', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(server.port)));
    try {
      const pongs = await Promise.all(clients.flatMap((c, i) => Array.from({ length: 5 }, (_, j) => c.ping(i * 100 + j + 1))));
      assert.equal(pongs.length, 250);
      pongs.forEach((p, k) => assert.equal(p.nonce, Math.floor(k / 5) * 100 + (k % 5) + 1));
    } finally {
      for (const c of clients) c.close();
    }
  });

  test('unknown types and types a client may not send get UNKNOWN_TYPE; the connection stays usable', async () => {
    const raw = await open();
    const types = [0x0999, 0x8002, 0x0001, 0x0003, 0xffff, 0x0000];
    for (const [i, type] of types.entries()) {
      const id = 500 + i;
      const start = raw.frames.length;
      raw.write(encodeFrame(type, id, pingCodec.encode({ nonce: 1 })));
      await raw.until(() => raw.frames.length > start, `answer to type 0x${type.toString(16)}`);
      const answer = raw.frames[start];
      assert.equal(answer.requestId, id, 'same requestId');
      assert.equal(decodeError(answer).code, ErrorCode.UNKNOWN_TYPE, `type 0x${type.toString(16)}`);
      rejected.unknown_type++;
      await raw.ping(600 + i, 42);
    }
    assert.equal(raw.gotFin, false);
  });

  test('an undecodable body gets BAD_REQUEST naming the body; the connection stays usable', async () => {
    const raw = await open();
    const cases: [number, Buffer][] = [
      [MessageType.Ping, Buffer.from([0x0f])], // wire type 7
      [MessageType.Ping, Buffer.from([0x08, 0xff])], // truncated varint
      [MessageType.RequestCode, Buffer.from([0x0a, 0x05, 0x2b, 0x31])], // truncated string
      [MessageType.RequestCode, Buffer.from([0x0a, 0x02, 0xff, 0xfe])], // invalid UTF-8
      [MessageType.GetBalance, Buffer.from([0x0a, 0x01, 0xc3])], // invalid UTF-8 in the token
    ];
    for (const [i, [type, body]] of cases.entries()) {
      const id = 700 + i;
      const start = raw.frames.length;
      raw.write(encodeFrame(type, id, body));
      await raw.until(() => raw.frames.length > start, `answer ${id}`);
      const answer = raw.frames[start];
      assert.equal(answer.requestId, id);
      const err = decodeError(answer);
      assert.equal(err.code, ErrorCode.BAD_REQUEST, `case ${i}`);
      assert.match(err.message, /body/, `names the body: ${err.message}`);
      rejected.bad_request++;
      await raw.ping(800 + i, i);
    }
  });

  test('64-bit values: every nonce is echoed bit for bit; ids beyond 2^53 are not found, not BAD_REQUEST', async () => {
    const raw = await open();
    // Ping bodies with nonces 2^64-1, 2^63-1, 2^53+1, 2^32: the Pong starts with the very same field.
    const nonces = ['ffffffffffffffffff01', 'ffffffffffffffff7f', '8180808080808010', '8080808010'];
    for (const [i, hex] of nonces.entries()) {
      const id = 900 + i;
      const start = raw.frames.length;
      raw.write(encodeFrame(MessageType.Ping, id, Buffer.from('08' + hex, 'hex')));
      await raw.until(() => raw.frames.length > start, `pong ${id}`);
      const answer = raw.frames[start];
      assert.equal(answer.type, PONG);
      assert.equal(answer.body.subarray(0, 1 + hex.length / 2).toString('hex'), '08' + hex, `nonce ${hex} echoed`);
    }
    // UnlockBike / EndRide of an id no row can have: the business answer, after the token check.
    const { client } = await loggedIn(server.port);
    try {
      for (const big of [2 ** 53, 2 ** 60, 2 ** 63]) {
        await assert.rejects(client.unlock(big), (err: unknown) => err instanceof ServerError && err.code === ErrorCode.BIKE_NOT_FOUND, `bike ${big}`);
        await assert.rejects(client.endRide(big, 0, 0), (err: unknown) => err instanceof ServerError && err.code === ErrorCode.RIDE_NOT_FOUND, `ride ${big}`);
      }
    } finally {
      client.close();
    }
  });

  test('a field that fails validation gets BAD_REQUEST naming the field', async () => {
    const client = await connect(server.port);
    try {
      await assert.rejects(client.requestCode('12'), (err: unknown) => {
        assert.ok(err instanceof ServerError);
        assert.equal(err.code, ErrorCode.BAD_REQUEST);
        assert.match(err.message, /phone/);
        return true;
      });
      rejected.bad_request++;
      await assert.rejects(client.nearbyBikes({ lat: 91, lng: 0, radiusM: 10 }), (err: unknown) => err instanceof ServerError && err.code === ErrorCode.BAD_REQUEST && /lat/.test(err.message));
      rejected.bad_request++;
      assert.equal((await client.ping(3)).nonce, 3, 'still usable');
    } finally {
      client.close();
    }
  });

  test('wrong magic: the ping before it is answered, then Error{BAD_FRAME} with requestId 0, then FIN', async () => {
    const raw = await open();
    raw.write(Buffer.concat([pingFrame(1, 11), pingFrame(2, 22), header(MessageType.Ping, 3, 0, 0x4b42), pingFrame(4, 44)]));
    await raw.until(() => raw.gotFin, 'FIN');
    rejected.bad_magic++;
    assert.deepEqual(
      raw.frames.map((f) => [f.type, f.requestId]),
      [
        [PONG, 1],
        [PONG, 2],
        [MessageType.Error, 0],
      ],
      'the pings before the bad frame, then the Error; nothing read after it',
    );
    assert.equal(decodeError(raw.frames[2]).code, ErrorCode.BAD_FRAME);
    assert.equal(raw.fault, null);
  });

  test('HTTP on the protocol port is a wrong magic too', async () => {
    const raw = await open();
    raw.write(Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    await raw.until(() => raw.gotFin, 'FIN');
    rejected.bad_magic++;
    assert.equal(raw.frames.length, 1);
    assert.equal(raw.frames[0].requestId, 0);
    assert.equal(decodeError(raw.frames[0]).code, ErrorCode.BAD_FRAME);
  });

  test('announced length > maxBodyBytes: Error{FRAME_TOO_LARGE} with that requestId, then FIN', async () => {
    const raw = await open();
    raw.write(header(MessageType.RequestCode, 0x01020304, 65537));
    await raw.until(() => raw.gotFin, 'FIN');
    rejected.too_large++;
    assert.equal(raw.frames.length, 1);
    assert.equal(raw.frames[0].requestId, 0x01020304);
    const err = decodeError(raw.frames[0]);
    assert.equal(err.code, ErrorCode.FRAME_TOO_LARGE);
  });

  test('a body of exactly maxBodyBytes is read (and judged by its content)', async () => {
    const raw = await open();
    // A valid Ping of exactly 65536 bytes: an unknown length-delimited field 2
    // (skipped by any decoder) of 65530 bytes, then nonce = 7.
    // tag(1) + length varint(3) + payload(65530) + nonce(2) = 65536.
    const payload = 65530;
    const lengthVarint = [(payload & 0x7f) | 0x80, ((payload >> 7) & 0x7f) | 0x80, payload >> 14];
    const precise = Buffer.concat([Buffer.from([0x12, ...lengthVarint]), Buffer.alloc(payload, 0x61), Buffer.from([0x08, 0x07])]);
    assert.equal(precise.length, 65536);
    raw.write(encodeFrame(MessageType.Ping, 9, precise));
    await raw.until(() => raw.frames.length >= 1, 'answer');
    assert.equal(raw.frames[0].type, PONG);
    assert.equal(pongCodec.decode(raw.frames[0].body).nonce, 7);
    assert.equal(raw.gotFin, false);
  });

  test('4 GiB - 1 announced after a pipelined RequestCode: its answer first, then FRAME_TOO_LARGE, then FIN', async () => {
    // RequestCode goes to Redis and the database: its answer is owed when the bad frame arrives.
    const raw = await open();
    const rc = encodeFrame(MessageType.RequestCode, 31, codec('RequestCode').encode({ phone: uniquePhone() }));
    raw.write(Buffer.concat([rc, pingFrame(32, 1), header(MessageType.Ping, 33, 0xffffffff)]));
    await raw.until(() => raw.gotFin, 'FIN');
    rejected.too_large++;
    assert.deepEqual(
      raw.frames.map((f) => f.requestId).slice(-1),
      [33],
      'the Error is the last frame',
    );
    assert.deepEqual(raw.frames.map((f) => f.requestId).sort(), [31, 32, 33]);
    assert.equal(raw.frames.find((f) => f.requestId === 31)!.type, MessageType.RequestCode | 0x8000);
    assert.equal(decodeError(raw.frames[2]).code, ErrorCode.FRAME_TOO_LARGE);
  });

  test('after a framing error the server reads nothing more and closes once we close', async () => {
    const raw = await open();
    raw.write(header(MessageType.Ping, 1, 0, 0));
    await raw.until(() => raw.gotFin, 'FIN');
    rejected.bad_magic++;
    // Requests sent after the bad frame are not answered.
    raw.write(pingFrame(2, 2));
    raw.socket.end();
    await raw.until(() => raw.closed, 'close');
    assert.deepEqual(
      raw.frames.map((f) => f.requestId),
      [0],
    );
  });

  test('/metrics counts the rejected frames by reason', async () => {
    for (const [reason, count] of Object.entries(rejected)) {
      assert.ok(count > 0, `this suite caused ${reason} rejects`);
      assert.equal(await metric(server, 'bike_frames_rejected_total', `{reason="${reason}"}`), count, `bike_frames_rejected_total{reason="${reason}"}`);
    }
  });
});

describe('idle connections (idleTimeoutMs 500, 2 requests in flight per connection)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ workers: 1, env: { BIKE_IDLE_TIMEOUT_MS: '500', BIKE_MAX_INFLIGHT_PER_CONNECTION: '2' } });
  });
  after(() => stopAndDrop(server));

  test('a half-frame left idle is closed silently', async () => {
    const raw = await RawClient.open(server.port);
    raw.write(pingFrame(1, 1).subarray(0, 5));
    await raw.until(() => raw.gotFin || raw.closed, 'the server to close the connection');
    assert.equal(raw.frames.length, 0, 'nothing sent: closed silently');
    assert.equal(raw.fault, null);
  });

  test('a connection that sends nothing is closed silently', async () => {
    const raw = await RawClient.open(server.port);
    await raw.until(() => raw.gotFin || raw.closed, 'the server to close the connection');
    assert.equal(raw.frames.length, 0);
  });

  test('a busy connection is not idle: a long backpressured pipeline is answered in full', async () => {
    // Far more work than fits in idleTimeoutMs at 2 requests in flight: the
    // server holds complete frames unread (backpressure) and has requests in
    // flight the whole time, so neither idle rule applies.
    const raw = await RawClient.open(server.port);
    try {
      const n = 10_000;
      const frames: Buffer[] = [];
      for (let id = 1; id <= n; id++) frames.push(encodeFrame(MessageType.RequestCode, id, codec('RequestCode').encode({ phone: uniquePhone() })));
      raw.write(Buffer.concat(frames));
      await raw.until(() => raw.frames.length >= n || raw.gotFin || raw.closed, `${n} answers`);
      assert.equal(raw.gotFin || raw.closed, false, `closed after ${raw.frames.length} of ${n} answers`);
      assert.equal(raw.frames.length, n);
      assert.ok(raw.frames.every((f) => f.type === (MessageType.RequestCode | 0x8000)));
    } finally {
      raw.destroy();
    }
  });

  test('a client that never reads its answers is closed', async () => {
    const acceptedBefore = await metric(server, 'bike_connections_total');
    const raw = await RawClient.open(server.port);
    try {
      raw.socket.pause(); // we read nothing: the server's answers pile up
      raw.write(Buffer.concat(Array.from({ length: 100_000 }, (_, i) => pingFrame(i + 1, i))));
      const deadline = Date.now() + WAIT_MS;
      while ((await metric(server, 'bike_connections_total')) === acceptedBefore || (await metric(server, 'bike_connections_open')) !== 0) {
        assert.ok(Date.now() < deadline, 'the server closes the connection that does not read');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      raw.destroy();
    }
  });

  test('/metrics counts the idle closes', async () => {
    assert.ok((await metric(server, 'bike_connections_closed_total', '{reason="idle"}')) >= 2);
  });
});

describe('backpressure and the connection limit (1 worker, 4 in flight, 2 connections)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      workers: 1,
      env: { BIKE_MAX_INFLIGHT_PER_CONNECTION: '4', BIKE_MAX_CONNECTIONS_PER_WORKER: '2' },
    });
  });
  after(() => stopAndDrop(server));

  test('maxInflightPerConnection 4: 500 pipelined pings (and RequestCodes) are all answered', async () => {
    const raw = await RawClient.open(server.port);
    try {
      const frames: Buffer[] = [];
      for (let id = 1; id <= 500; id++) {
        // Every 10th is a RequestCode, whose answer takes a round trip to the stores.
        frames.push(id % 10 === 0 ? encodeFrame(MessageType.RequestCode, id, codec('RequestCode').encode({ phone: uniquePhone() })) : pingFrame(id, id * 7));
      }
      raw.write(Buffer.concat(frames));
      await raw.until(() => raw.frames.length >= 500, '500 answers');
      const ids = raw.frames.map((f) => f.requestId).sort((a, b) => a - b);
      assert.deepEqual(ids, Array.from({ length: 500 }, (_, i) => i + 1));
      for (const f of raw.frames) {
        if (f.requestId % 10 === 0) assert.equal(f.type, MessageType.RequestCode | 0x8000, `answer ${f.requestId}: ${f.type === 1 ? errorCodec.decode(f.body).message : ''}`);
        else assert.equal(pongCodec.decode(f.body).nonce, f.requestId * 7);
      }
    } finally {
      raw.destroy();
    }
  });

  test('the connection over maxConnectionsPerWorker gets Error{SERVICE_UNAVAILABLE} with requestId 0 and is closed', async () => {
    // Wait until the previous test's connection is gone on the server side.
    const deadline = Date.now() + WAIT_MS;
    while ((await metric(server, 'bike_connections_open')) !== 0) {
      assert.ok(Date.now() < deadline, 'connections from earlier tests close');
      await new Promise((r) => setTimeout(r, 50));
    }
    const first = await RawClient.open(server.port);
    const second = await RawClient.open(server.port);
    try {
      // Both are accepted (answered), so the server counts them.
      await first.ping(1, 1);
      await second.ping(1, 2);
      const third = await RawClient.open(server.port);
      await third.until(() => third.closed || third.gotFin, 'the third connection to be closed');
      await third.until(() => third.closed || third.frames.length > 0, 'the refusal');
      assert.equal(third.frames.length, 1);
      assert.equal(third.frames[0].requestId, 0);
      const err = decodeError(third.frames[0]);
      assert.equal(err.code, ErrorCode.SERVICE_UNAVAILABLE);
      assert.ok(err.retryAfterMs > 0, 'with retry_after_ms');
      third.destroy();
      // The two accepted ones are unaffected.
      await first.ping(2, 3);
      await second.ping(2, 4);
      assert.ok((await metric(server, 'bike_connections_refused_total')) >= 1);
    } finally {
      first.destroy();
      second.destroy();
    }
  });
});
