// The Framer (src/protocol/framer.ts): how a byte stream becomes frames,
// whatever the chunking, and what it does with hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Framer, type FramingFault } from '../../src/protocol/framer.js';
import { encodeFrame, HEADER_BYTES, MAGIC } from '../../src/protocol/header.js';

interface Frame {
  type: number;
  requestId: number;
  body: Buffer;
}

const MAX = 65536;

/** Feeds `chunks` to a fresh framer (sink always accepts); returns frames (bodies copied) and the fault. */
function decodeChunks(chunks: Buffer[], maxBodyBytes = MAX): { frames: Frame[]; fault: FramingFault | null; framer: Framer } {
  const framer = new Framer(maxBodyBytes);
  const frames: Frame[] = [];
  let fault: FramingFault | null = null;
  for (const chunk of chunks) {
    const f = framer.push(chunk, (type, requestId, body) => {
      // The body is a view into received memory: copy it, as the contract says.
      frames.push({ type, requestId, body: Buffer.from(body) });
      return true;
    });
    if (f) fault = f;
  }
  return { frames, fault, framer };
}

function concatFrames(frames: Frame[]): Buffer {
  return Buffer.concat(frames.map((f) => encodeFrame(f.type, f.requestId, f.body)));
}

/** Cuts `buf` at the given (unsorted, possibly repeated) offsets. */
function cut(buf: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => Math.min(buf.length, Math.max(0, o))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    if (p > prev) chunks.push(buf.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return chunks;
}

/**
 * The reference reading of a whole stream, written from the contract:
 * frames in order until the bytes run out or a header is bad.
 */
function reference(buf: Buffer, maxBodyBytes = MAX): { frames: Frame[]; fault: FramingFault | null } {
  const frames: Frame[] = [];
  let pos = 0;
  while (buf.length - pos >= HEADER_BYTES) {
    if (buf.readUInt16BE(pos) !== MAGIC) return { frames, fault: { kind: 'bad_magic', requestId: 0 } };
    const requestId = buf.readUInt32BE(pos + 4);
    const length = buf.readUInt32BE(pos + 8);
    if (length > maxBodyBytes) return { frames, fault: { kind: 'too_large', requestId, length } };
    if (buf.length - pos - HEADER_BYTES < length) break;
    frames.push({ type: buf.readUInt16BE(pos + 2), requestId, body: Buffer.from(buf.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length)) });
    pos += HEADER_BYTES + length;
  }
  return { frames, fault: null };
}

// A stream with the shapes that matter: empty bodies, extreme type ids and
// request ids, a body bigger than a typical socket chunk.
const SAMPLE: Frame[] = [
  { type: 0x0002, requestId: 1, body: Buffer.alloc(0) },
  { type: 0x0010, requestId: 0xffffffff, body: Buffer.from('\n\x0b+4915112345') },
  { type: 0xffff, requestId: 7, body: randomBytes(300) },
  { type: 0x0000, requestId: 0, body: Buffer.alloc(0) },
  { type: 0x8002, requestId: 2, body: Buffer.alloc(0) },
  { type: 0x0033, requestId: 123456789, body: randomBytes(1500) },
  { type: 0x0002, requestId: 3, body: Buffer.from([0x08, 0x01]) },
  { type: 0x0001, requestId: 4, body: randomBytes(1) },
];
const SAMPLE_STREAM = concatFrames(SAMPLE);

test('a multi-frame stream split in two at every byte offset decodes identically', () => {
  for (let k = 0; k <= SAMPLE_STREAM.length; k++) {
    const { frames, fault, framer } = decodeChunks([SAMPLE_STREAM.subarray(0, k), SAMPLE_STREAM.subarray(k)]);
    assert.equal(fault, null, `split at ${k}`);
    assert.deepEqual(frames, SAMPLE, `split at ${k}`);
    assert.equal(framer.hasPartialFrame, false, `split at ${k}: nothing left over`);
  }
});

test('the same stream fed one byte at a time decodes identically', () => {
  const chunks = [...SAMPLE_STREAM].map((b) => Buffer.from([b]));
  const { frames, fault, framer } = decodeChunks(chunks);
  assert.equal(fault, null);
  assert.deepEqual(frames, SAMPLE);
  assert.equal(framer.hasPartialFrame, false);
});

test('delivery happens as soon as a frame is whole, not later', () => {
  // Proves the framer neither waits for more input nor delivers early.
  const framer = new Framer(MAX);
  const got: number[] = [];
  const sink = (_t: number, id: number) => (got.push(id), true);
  const first = encodeFrame(2, 11, Buffer.from([1, 2, 3]));
  framer.push(first.subarray(0, first.length - 1), sink);
  assert.deepEqual(got, []);
  assert.equal(framer.hasPartialFrame, true);
  framer.push(first.subarray(first.length - 1), sink);
  assert.deepEqual(got, [11]);
  assert.equal(framer.hasPartialFrame, false);
  // A header alone with a 0-length body is a whole frame.
  framer.push(encodeFrame(2, 12, Buffer.alloc(0)), sink);
  assert.deepEqual(got, [11, 12]);
});

test('many frames in one chunk are all delivered, in order', () => {
  const frames: Frame[] = [];
  for (let i = 0; i < 10_000; i++) frames.push({ type: 2, requestId: i + 1, body: i % 3 === 0 ? Buffer.alloc(0) : Buffer.from([0x08, i & 0x7f]) });
  const { frames: got, fault } = decodeChunks([concatFrames(frames)]);
  assert.equal(fault, null);
  assert.equal(got.length, frames.length);
  assert.deepEqual(got, frames);
});

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 0xffff }),
  requestId: fc.integer({ min: 0, max: 0xffffffff }),
  body: fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a))),
}).map((f): Frame => ({ ...f })); // plain objects (fc.record makes null-prototype ones)

test('property: any random chunking of valid frames decodes to the same frames', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 25 }), fc.array(fc.nat(20_000), { maxLength: 40 }), (frames, offsets) => {
      const stream = concatFrames(frames);
      const { frames: got, fault, framer } = decodeChunks(cut(stream, offsets));
      assert.equal(fault, null);
      assert.deepEqual(got, frames);
      assert.equal(framer.hasPartialFrame, false);
    }),
    { numRuns: 300 },
  );
});

// Streams that mix valid frames with garbage and with headers announcing
// lengths over the limit (up to 4 GiB - 1).
const segmentArb = fc.oneof(
  { weight: 4, arbitrary: frameArb.map((f) => encodeFrame(f.type, f.requestId, f.body)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: MAX + 1, max: 0xffffffff }))
      .map(([type, id, length]) => {
        const h = Buffer.alloc(HEADER_BYTES);
        h.writeUInt16BE(MAGIC, 0);
        h.writeUInt16BE(type, 2);
        h.writeUInt32BE(id, 4);
        h.writeUInt32BE(length, 8);
        return h;
      }),
  },
);

test('property: garbage and huge lengths never throw and give the fault the contract names', () => {
  fc.assert(
    fc.property(fc.array(segmentArb, { maxLength: 12 }), fc.array(fc.nat(10_000), { maxLength: 20 }), (segments, offsets) => {
      const stream = Buffer.concat(segments);
      const expected = reference(stream);
      const chunks = cut(stream, offsets);
      let result!: ReturnType<typeof decodeChunks>;
      assert.doesNotThrow(() => (result = decodeChunks(chunks)));
      assert.deepEqual(result.frames, expected.frames);
      assert.deepEqual(result.fault, expected.fault);
      if (result.fault) {
        // Once broken, the framer stays broken and delivers nothing more.
        let delivered = 0;
        const again = result.framer.push(encodeFrame(2, 1, Buffer.alloc(0)), () => (delivered++, true));
        assert.deepEqual(again, expected.fault);
        assert.equal(delivered, 0);
      }
    }),
    { numRuns: 500 },
  );
});

test('property: pure random bytes never throw out of the framer', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 10 }), (bytes, offsets) => {
      const stream = Buffer.from(bytes);
      assert.doesNotThrow(() => decodeChunks(cut(stream, offsets)));
      assert.deepEqual(decodeChunks(cut(stream, offsets)).fault, reference(stream).fault);
    }),
    { numRuns: 500 },
  );
});

test('wrong magic is bad_magic with requestId 0, after the frames before it', () => {
  const bad = encodeFrame(2, 99, Buffer.alloc(0));
  bad.writeUInt16BE(0x4b42, 0); // byte-swapped magic
  const { frames, fault } = decodeChunks([Buffer.concat([encodeFrame(2, 5, Buffer.alloc(0)), bad, encodeFrame(2, 6, Buffer.alloc(0))])]);
  assert.deepEqual(
    frames.map((f) => f.requestId),
    [5],
  );
  assert.deepEqual(fault, { kind: 'bad_magic', requestId: 0 });
});

test('length over the limit is too_large with the frame\'s requestId; exactly the limit is fine', () => {
  const limit = 1000;
  const atLimit = encodeFrame(0x21, 41, Buffer.alloc(limit, 7));
  const over = Buffer.alloc(HEADER_BYTES);
  over.writeUInt16BE(MAGIC, 0);
  over.writeUInt16BE(0x21, 2);
  over.writeUInt32BE(42, 4);
  over.writeUInt32BE(limit + 1, 8);
  const { frames, fault } = decodeChunks([atLimit, over], limit);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].body.length, limit);
  assert.deepEqual(fault, { kind: 'too_large', requestId: 42, length: limit + 1 });
});

function hugeHeader(requestId: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt16BE(MAGIC, 0);
  h.writeUInt16BE(0x0002, 2);
  h.writeUInt32BE(requestId, 4);
  h.writeUInt32BE(0xffffffff, 8); // 4 GiB - 1
  return h;
}

const arrayBuffers = () => process.memoryUsage().arrayBuffers;
const MiB = 1024 * 1024;

test('a header announcing 4 GiB - 1 over the limit: too_large, and the size is never allocated', () => {
  const before = arrayBuffers();
  const { frames, fault } = decodeChunks([hugeHeader(0xdeadbeef)]);
  assert.equal(frames.length, 0);
  assert.deepEqual(fault, { kind: 'too_large', requestId: 0xdeadbeef, length: 0xffffffff });
  assert.ok(arrayBuffers() - before < 64 * MiB, `arrayBuffers grew by ${arrayBuffers() - before}`);
});

test('a header announcing 4 GiB - 1 under a huge limit: only received bytes are buffered', () => {
  // Even when the limit allows it, the framer waits for bytes instead of
  // reserving the announced size.
  const framer = new Framer(0xffffffff);
  const before = arrayBuffers();
  let delivered = 0;
  const sink = () => (delivered++, true);
  assert.equal(framer.push(hugeHeader(1), sink), null);
  const piece = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; i < 16; i++) assert.equal(framer.push(piece, sink), null); // 1 MiB of body so far
  assert.equal(delivered, 0);
  assert.equal(framer.hasPartialFrame, true);
  const grown = arrayBuffers() - before;
  assert.ok(grown < 64 * MiB, `arrayBuffers grew by ${grown} bytes for 1 MiB received`);
});

test('backpressure: a sink returning false stops delivery; resume() delivers the rest in order', () => {
  const frames: Frame[] = Array.from({ length: 10 }, (_, i) => ({ type: 2, requestId: i + 1, body: Buffer.from([i]) }));
  const framer = new Framer(MAX);
  const got: number[] = [];
  // Stop after the 3rd frame.
  const fault = framer.push(concatFrames(frames), (_t, id) => {
    got.push(id);
    return got.length < 3;
  });
  assert.equal(fault, null);
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(framer.hasPartialFrame, true, 'the rest is still buffered');
  // A sink that stops at every frame: one frame per resume.
  const stopEach = (_t: number, id: number) => (got.push(id), false);
  framer.resume(stopEach);
  assert.deepEqual(got, [1, 2, 3, 4]);
  framer.resume(stopEach);
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  // Bytes arriving while stopped queue behind the buffered frames.
  const late = concatFrames([{ type: 2, requestId: 11, body: Buffer.alloc(0) }]);
  framer.push(late.subarray(0, 5), stopEach);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  framer.resume((_t, id) => (got.push(id), true));
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the late frame is not whole yet');
  framer.push(late.subarray(5), (_t, id) => (got.push(id), true));
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(framer.hasPartialFrame, false);
});

test('backpressure: bodies delivered on resume are intact', () => {
  const frames: Frame[] = Array.from({ length: 50 }, (_, i) => ({ type: 0x10 + (i % 5), requestId: 1000 + i, body: randomBytes(i * 37) }));
  const stream = concatFrames(frames);
  const framer = new Framer(MAX);
  const got: Frame[] = [];
  const sink = (type: number, requestId: number, body: Buffer) => (got.push({ type, requestId, body: Buffer.from(body) }), got.length % 4 !== 0);
  // Arbitrary chunking plus a stop every 4th frame.
  for (const chunk of cut(stream, [1, 13, 500, 501, 4000, 20000])) framer.push(chunk, sink);
  for (let i = 0; i < 100 && got.length < frames.length; i++) framer.resume(sink);
  assert.deepEqual(got, frames);
});

test('backpressure: a fault behind a stop is reported only once the frames before it are delivered', () => {
  const bad = Buffer.alloc(HEADER_BYTES); // zero magic
  const stream = Buffer.concat([encodeFrame(2, 1, Buffer.alloc(0)), encodeFrame(2, 2, Buffer.alloc(0)), bad]);
  const framer = new Framer(MAX);
  const got: number[] = [];
  assert.equal(framer.push(stream, (_t, id) => (got.push(id), false)), null);
  assert.deepEqual(got, [1]);
  assert.equal(framer.fault, null);
  const fault = framer.resume((_t, id) => (got.push(id), true));
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(fault, { kind: 'bad_magic', requestId: 0 });
  assert.deepEqual(framer.fault, fault);
});
