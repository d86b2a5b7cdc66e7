// The wire format pieces: the 12-byte header, the protobuf codec of every
// message, and that the code's schema and type table are the contract's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Long from 'long';
import protobuf from 'protobufjs';
import { encodeFrame, HEADER_BYTES, MAGIC, MAX_REQUEST_ID, readHeader, REPLY_BIT, writeHeader } from '../../src/protocol/header.js';
import { codec } from '../../src/protocol/codec.js';
import { MessageType, REQUESTS, replyType, typeName } from '../../src/protocol/types.js';
import { ErrorCode, NoticeKind, RecordKind, RideStatus } from '../../src/protocol/messages.js';

const PROTOCOL_MD = readFileSync(fileURLToPath(new URL('../../../shared/PROTOCOL.md', import.meta.url)), 'utf8');
const PROTO_PATH = fileURLToPath(new URL('../../src/protocol/bikeshare.proto', import.meta.url));
const PROTO_FILE = readFileSync(PROTO_PATH, 'utf8');

// ---- header ---------------------------------------------------------------

test('header: writeHeader lays out magic, type, requestId, length big-endian', () => {
  const buf = Buffer.alloc(HEADER_BYTES + 4, 0xee);
  writeHeader(buf, 2, 0x8033, 0x01020304, 0x0a0b0c0d);
  assert.deepEqual([...buf], [0xee, 0xee, 0x42, 0x4b, 0x80, 0x33, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0xee, 0xee]);
  assert.equal(HEADER_BYTES, 12);
  assert.equal(MAGIC, 0x424b);
  assert.equal(REPLY_BIT, 0x8000);
  assert.equal(MAX_REQUEST_ID, 2 ** 32 - 1);
});

test('header: readHeader inverts writeHeader at the extremes', () => {
  for (const [type, requestId, length] of [
    [0, 0, 0],
    [0xffff, 0xffffffff, 0xffffffff],
    [0x0002, 1, 65536],
    [0x8001, 0x80000000, 12],
  ]) {
    const buf = Buffer.alloc(20);
    writeHeader(buf, 5, type, requestId, length);
    assert.deepEqual(readHeader(buf, 5), { magic: MAGIC, type, requestId, length });
  }
  // readHeader does not check the magic: it reports what is there.
  assert.equal(readHeader(Buffer.from('GET / HTTP/1.1')).magic, 0x4745);
});

test('header: encodeFrame is header + body in one buffer', () => {
  const body = Buffer.from([0x08, 0x2a]);
  const frame = encodeFrame(0x0002, 77, body);
  assert.equal(frame.length, HEADER_BYTES + 2);
  assert.deepEqual(readHeader(frame), { magic: MAGIC, type: 2, requestId: 77, length: 2 });
  assert.deepEqual(frame.subarray(HEADER_BYTES), body);
  // An empty message is a zero-length body.
  assert.deepEqual([...encodeFrame(0x8012, 1, new Uint8Array(0))], [0x42, 0x4b, 0x80, 0x12, 0, 0, 0, 1, 0, 0, 0, 0]);
});

test('types: an answer type is the request type with bit 15 set', () => {
  assert.equal(replyType(MessageType.Ping), 0x8002);
  assert.equal(replyType(MessageType.ListRides), 0x8033);
  assert.equal(typeName(0x0031), 'UnlockBike');
  assert.equal(typeName(0x0999), 'unknown');
});

// ---- codec round trips ----------------------------------------------------

const BIG = 2 ** 53 - 1; // the largest 64-bit value the codec promises as a JS number

// Every field of every sample is set to a non-default value, so a field the
// codec drops or garbles shows up (checked against the schema below).
const record = { recordId: BIG, kind: RecordKind.RIDE_FARE, amountCents: -250, balanceAfterCents: -100, createdAtMs: 1_700_000_000_123, rideId: 42 };
const ride = { rideId: 9, bikeId: 2 ** 40 + 3, status: RideStatus.FINISHED, startedAtMs: 1_700_000_000_000, endedAtMs: 1_700_000_360_000, durationSeconds: 360, fareCents: 150 };
const SAMPLES: Record<string, Record<string, unknown>> = {
  Error: { code: ErrorCode.RATE_LIMITED, message: 'phone: slow down ✓', retryAfterMs: 4_000_000_000 },
  ServerNotice: { kind: NoticeKind.SHUTTING_DOWN, message: 'draining' },
  Ping: { nonce: BIG },
  Pong: { nonce: 12345678901234, serverTimeMs: 1_700_000_000_999 },
  RequestCode: { phone: '+4915112345678' },
  RequestCodeReply: { ttlSeconds: 300, resendAfterSeconds: 60, debugCode: '012345' },
  Login: { phone: '4915112345678', code: '000000' },
  LoginReply: { token: 'tok_' + 'x'.repeat(124), userId: 17, expiresAtMs: 1_702_592_000_000, balanceCents: -1, newUser: true },
  Logout: { token: 'abc' },
  LogoutReply: {},
  GetBalance: { token: 'T' },
  Balance: { balanceCents: -(2 ** 40) },
  Recharge: { token: 't', amountCents: 1_000_000, idempotencyKey: 'é'.repeat(32) },
  RechargeReply: { balanceCents: 1_000_150, recordId: 3, duplicate: true },
  ListAccountRecords: { token: 't', cursor: 'cjEuNQ', limit: 100 },
  AccountRecordPage: { records: [record, { ...record, recordId: 1, kind: RecordKind.RECHARGE, amountCents: 500 }], nextCursor: 'cjEuMQ' },
  FindNearbyBikes: { lat: -89.999999, lng: 179.123456789, radiusM: 5000, limit: 1 },
  NearbyBikes: { bikes: [{ bikeId: 1, lat: 48.8566, lng: 2.3522, distanceM: 4999 }, { bikeId: 2, lat: -0.5, lng: -180, distanceM: 1 }] },
  UnlockBike: { token: 't', bikeId: BIG },
  RideStarted: { rideId: 1, bikeId: 2, startedAtMs: 3 },
  EndRide: { token: 't', rideId: 5, lat: 90, lng: -179.5 },
  RideEnded: { rideId: 5, durationSeconds: 4_294_967_295, fareCents: 250, balanceCents: -100 },
  ListRides: { token: 't', cursor: 'ZDEuOQ', limit: 20 },
  RidePage: { rides: [ride, { ...ride, rideId: 10, status: RideStatus.ACTIVE }], nextCursor: 'ZDEuOQ' },
};

/** protobufjs returns Message instances with defaults on the prototype: keep own fields only (and Longs as numbers). */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (Long.isLong(value)) return (value as Long).toNumber();
  if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const schemaRoot = protobuf.loadSync(PROTO_PATH);
const schemaType = (name: string) => schemaRoot.lookupType(`bikeshare.v1.${name}`);

/** Every field of the message (and of nested messages) carries a non-default value. */
function assertEveryFieldSet(name: string, sample: Record<string, unknown>): void {
  const type = schemaType(name);
  for (const field of type.fieldsArray) {
    const v = sample[field.name];
    assert.ok(v !== undefined && v !== 0 && v !== '' && v !== false, `${name}.${field.name} must be set in the sample`);
    if (field.repeated) {
      assert.ok(Array.isArray(v) && v.length > 0, `${name}.${field.name} must be a non-empty list`);
      field.resolve();
      if (field.resolvedType instanceof protobuf.Type) for (const item of v as Record<string, unknown>[]) assertEveryFieldSet(field.resolvedType.name, item);
    }
  }
  assert.deepEqual(Object.keys(sample).sort(), type.fieldsArray.map((f) => f.name).sort(), `${name}: sample has exactly the schema's fields`);
}

const MESSAGE_NAMES = [...new Set(['Error', 'ServerNotice', ...REQUESTS.flatMap((r) => [r.request, r.reply])])];

for (const name of MESSAGE_NAMES) {
  test(`codec: ${name} round-trips every field`, () => {
    const sample = SAMPLES[name];
    assert.ok(sample, `a sample for ${name}`);
    assertEveryFieldSet(name, sample);
    const c = codec<Record<string, unknown>>(name);
    assert.equal(c.name, name);
    const body = c.encode(sample);
    if (name === 'LogoutReply') assert.equal(body.length, 0, 'an empty message is a zero-length body');
    else assert.ok(body.length > 0);
    assert.deepEqual(plain(c.decode(body)), sample);
    // Our encoding is protobuf: the schema itself reads it back the same.
    assert.deepEqual(plain(schemaType(name).decode(body)), sample);
  });
}

test('codec: a zero-length body decodes to all defaults', () => {
  const ping = codec<{ nonce: number }>('Ping').decode(new Uint8Array(0));
  assert.equal(ping.nonce, 0);
  const find = codec<{ lat: number; radiusM: number; limit: number }>('FindNearbyBikes').decode(new Uint8Array(0));
  assert.deepEqual([find.lat, find.radiusM, find.limit], [0, 0, 0]);
  const login = codec<{ phone: string; code: string }>('Login').decode(new Uint8Array(0));
  assert.deepEqual([login.phone, login.code], ['', '']);
  const page = codec<{ records: unknown[]; nextCursor: string }>('AccountRecordPage').decode(new Uint8Array(0));
  assert.deepEqual([page.records, page.nextCursor], [[], '']);
});

test('codec: known bytes (wire compatibility with any protobuf implementation)', () => {
  // Ping{nonce: 300}: field 1 varint 300 = 0x08 0xac 0x02
  assert.deepEqual([...codec('Ping').encode({ nonce: 300 })], [0x08, 0xac, 0x02]);
  // RequestCode{phone: "+1"}: field 1 length-delimited
  assert.deepEqual([...codec('RequestCode').encode({ phone: '+1' })], [0x0a, 0x02, 0x2b, 0x31]);
  // Balance{balance_cents: -1}: int64 -1 is ten bytes of varint
  assert.deepEqual([...codec('Balance').encode({ balanceCents: -1 })], [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.equal(codec<{ balanceCents: number }>('Balance').decode(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])).balanceCents, -1);
  // Unknown fields are skipped (forward compatibility).
  assert.equal(codec<{ nonce: number }>('Ping').decode(Buffer.from([0x10, 0x05, 0x08, 0x07])).nonce, 7);
});

test('codec: 64-bit fields are numbers; only the echoed nonce keeps all 64 bits', () => {
  const ping = codec<{ nonce: unknown }>('Ping');
  const pong = codec<{ nonce: unknown; serverTimeMs: number }>('Pong');
  // Varints of 2^64-1, 2^63-1, 2^53+1, 2^53-1 (the largest exact number) and 1.
  const varints = [
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
    [0x01],
  ];
  for (const v of varints) {
    const nonce = ping.decode(Buffer.from([0x08, ...v])).nonce;
    const echoed = pong.encode({ nonce, serverTimeMs: 5 });
    assert.deepEqual([...echoed], [0x08, ...v, 0x10, 0x05], `Pong echoes varint ${Buffer.from(v).toString('hex')} bit for bit`);
  }
  assert.equal(ping.decode(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])).nonce, 2 ** 53 - 1, 'a nonce that fits is a number');
  // Every other 64-bit field is a plain number, nested ones too...
  const page = codec<{ records: { recordId: unknown; amountCents: unknown }[] }>('AccountRecordPage');
  const decoded = page.decode(page.encode({ records: [{ recordId: 7, amountCents: -150 }] })).records[0];
  assert.deepEqual([typeof decoded.recordId, decoded.recordId, typeof decoded.amountCents, decoded.amountCents], ['number', 7, 'number', -150]);
  // ...and an id beyond 2^53 decodes above MAX_SAFE_INTEGER, never onto a real id.
  const unlock = codec<{ bikeId: number }>('UnlockBike');
  for (const v of varints.slice(0, 3)) {
    const bikeId = unlock.decode(Buffer.from([0x10, ...v])).bikeId;
    assert.equal(typeof bikeId, 'number');
    assert.ok(bikeId > Number.MAX_SAFE_INTEGER, `${bikeId}`);
  }
});

// ---- decode errors --------------------------------------------------------

test('codec: truncated bodies throw', () => {
  const c = codec('Login');
  const body = c.encode({ phone: '+4915112345678', code: '123456' });
  for (let n = 1; n < body.length; n++) {
    // Cuts that end exactly between two fields are a valid shorter message.
    if (n === 2 + 14) continue;
    assert.throws(() => c.decode(body.subarray(0, n)), `cut at ${n} of ${body.length}`);
  }
  assert.throws(() => codec('Ping').decode(Buffer.from([0x08, 0xff])), 'a varint cut in the middle');
});

test('codec: invalid UTF-8 in a string field throws', () => {
  assert.throws(() => codec('RequestCode').decode(Buffer.from([0x0a, 0x02, 0xff, 0xfe])));
  assert.throws(() => codec('Login').decode(Buffer.from([0x0a, 0x01, 0x31, 0x12, 0x01, 0xc3])), 'a lone lead byte');
  assert.throws(() => codec('Logout').decode(Buffer.from([0x0a, 0x03, 0xed, 0xa0, 0x80])), 'an encoded surrogate');
  assert.throws(() => codec('Recharge').decode(Buffer.from([0x1a, 0x02, 0xc0, 0x80])), 'an overlong encoding');
  // Valid multi-byte UTF-8 is fine.
  assert.equal(codec<{ phone: string }>('RequestCode').decode(Buffer.from([0x0a, 0x02, 0xc3, 0xa9])).phone, 'é');
});

test('codec: wire type 7 (and 6) throw', () => {
  assert.throws(() => codec('Ping').decode(Buffer.from([0x0f])), /wire type/);
  assert.throws(() => codec('Ping').decode(Buffer.from([0x0e, 0x00])), /wire type/);
  assert.throws(() => codec('GetBalance').decode(Buffer.from([0x0a, 0x01, 0x41, 0x17])), /wire type/);
});

// ---- the schema and the type table are the contract's ---------------------

test('bikeshare.proto is the proto block of PROTOCOL.md (after its 2 comment lines)', () => {
  const block = /```proto\n([\s\S]*?)```/.exec(PROTOCOL_MD);
  assert.ok(block, 'PROTOCOL.md has a ```proto block');
  const lines = PROTO_FILE.split('\n');
  assert.ok(lines[0].startsWith('//') && lines[1].startsWith('//'), 'the file starts with 2 comment lines');
  assert.equal(lines.slice(2).join('\n').trimEnd(), block[1].trimEnd());
});

interface TableRow {
  id: number;
  request: string;
  answer: string;
  auth: string;
}

function section4Table(): TableRow[] {
  const section = PROTOCOL_MD.split(/^## /m).find((s) => s.startsWith('4. '));
  assert.ok(section, 'PROTOCOL.md has a section 4');
  const rows: TableRow[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4 || !/^0x[0-9a-f]{4}$/i.test(cells[0])) continue;
    const name = (cell: string) => /`(\w+)`/.exec(cell)?.[1] ?? '';
    rows.push({ id: parseInt(cells[0], 16), request: name(cells[1]), answer: name(cells[2]), auth: cells[3] });
  }
  return rows;
}

test('every type id of PROTOCOL.md section 4 is in REQUESTS with its names and auth flag', () => {
  const rows = section4Table();
  assert.equal(rows.length, 13, 'the table has 13 rows');
  const requests = rows.filter((r) => r.auth === 'yes' || r.auth === 'no');
  assert.equal(requests.length, 11);
  for (const row of requests) {
    const entry = REQUESTS.find((e) => e.id === row.id);
    assert.ok(entry, `0x${row.id.toString(16)} ${row.request} is in REQUESTS`);
    assert.equal(entry.request, row.request);
    assert.equal(entry.reply, row.answer);
    assert.equal(entry.auth, row.auth === 'yes', `auth of ${row.request}`);
    assert.equal(MessageType[entry.request], row.id);
  }
  assert.equal(REQUESTS.length, requests.length, 'nothing in REQUESTS beyond the table');
  assert.equal(new Set(REQUESTS.map((e) => e.id)).size, REQUESTS.length, 'ids are distinct');
  // The server-to-client types are not requests a client may send.
  for (const row of rows.filter((r) => r.auth === '-')) {
    assert.equal(REQUESTS.find((e) => e.id === row.id), undefined, `0x${row.id.toString(16)} is not a request`);
    assert.equal(MessageType[row.request as keyof typeof MessageType], row.id);
  }
  for (const entry of REQUESTS) assert.equal(entry.id & REPLY_BIT, 0, 'request ids have bit 15 clear');
});
