// Protocol fuzzing against a live cluster: valid frames of every type, the
// same with bytes flipped, truncated bodies, bodies sent under another type,
// random type ids, garbage bodies of random lengths within the limit, and now
// and then a frame that breaks the stream (bad magic, a length over the
// limit). Every frame has an exact expectation (docs/protocol.md):
//   - an unknown type (or one a client may not send): Error UNKNOWN_TYPE;
//   - a known type whose body does not decode: Error BAD_REQUEST;
//   - requestId 0 on a known type: Error BAD_REQUEST with requestId 0;
//   - a body that decodes: its answer type or a non-fatal Error (never
//     INTERNAL, SERVICE_UNAVAILABLE, a framing error or UNKNOWN_TYPE), and
//     never BAD_REQUEST when it was built valid;
//   - bad magic: after the answers owed, Error BAD_FRAME (requestId 0), then
//     FIN; length over the limit: Error FRAME_TOO_LARGE with its requestId,
//     then FIN; frames sent after either are never answered.
// The rejections counted here must equal the growth of
// bike_frames_rejected_total, the workers must be the same processes
// afterwards, and their memory must stay bounded.
import { codec } from '../../src/protocol/codec.js';
import { encodeFrame, MAGIC } from '../../src/protocol/header.js';
import { MessageType, REQUESTS, type TypeEntry } from '../../src/protocol/types.js';
import { ErrorCode } from '../../src/protocol/messages.js';
import type { TestServer } from '../../test/helpers/server.js';
import { prng } from '../../test/helpers/prng.js';
import { RawConn, errorName, errorOf, type Frame } from './raw.js';
import { scrape, total } from './metrics.js';
import { workerPids, rssKb } from './procs.js';
import { HOME } from './load.js';

export interface FuzzOptions {
  server: TestServer;
  frames: number;
  connections: number;
  /** a live token, so authenticated types get past the token check */
  token: string;
  /** ids of bikes that exist (the rest of the id space mostly does not) */
  bikeIds: number[];
  maxBodyBytes?: number;
  seed?: number;
  /** growth of one worker's RSS that still counts as bounded; default 150 MiB */
  rssBoundKb?: number;
  /** progress lines */
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  frames: number;
  answers: number;
  /** connections the server closed after a framing error, as expected */
  closedByFault: number;
  connectionsOpened: number;
  /** rejections seen by the fuzzer (UNKNOWN_TYPE, BAD_REQUEST, BAD_FRAME, FRAME_TOO_LARGE answers) */
  rejectionsCounted: number;
  /** growth of bike_frames_rejected_total (sum over reasons) */
  rejectionsMetric: number;
  byKind: Record<string, number>;
  byAnswer: Record<string, number>;
  workers: { pid: number; rssBeforeKb: number; rssAfterKb: number }[];
  problems: string[];
}

type Expect =
  | { kind: 'exact'; code: ErrorCode; requestId: number; what: string }
  | { kind: 'answer'; type: number; badRequestOk: boolean; what: string }
  | { kind: 'never'; what: string };

const FATAL = new Set([ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE, ErrorCode.UNKNOWN_TYPE, ErrorCode.INTERNAL, ErrorCode.SERVICE_UNAVAILABLE, ErrorCode.SHUTTING_DOWN, ErrorCode.ERROR_CODE_UNSPECIFIED]);
const PHONES = ['+15550000101', '+15550000102', '+15550000103', '+15550000104'];
const KNOWN = new Map(REQUESTS.map((r) => [r.id, r]));

class Gen {
  readonly rnd: () => number;
  constructor(
    seed: number,
    private readonly o: FuzzOptions,
  ) {
    this.rnd = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rnd() * list.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.rnd() * 256);
    return b;
  }
  str(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(0x21, 0x7e));
    return s;
  }

  /** A message of the entry's request type whose fields all pass validation. */
  valid(entry: TypeEntry): object {
    const token = this.o.token;
    const lat = HOME.lat + (this.rnd() - 0.5) * 0.02;
    const lng = HOME.lng + (this.rnd() - 0.5) * 0.02;
    const anyBike = () => (this.rnd() < 0.5 && this.o.bikeIds.length ? this.pick(this.o.bikeIds) : this.int(1, 1_000_000));
    switch (entry.request) {
      case 'Ping': return { nonce: this.int(0, 2 ** 31) };
      case 'RequestCode': return { phone: this.pick(PHONES) };
      case 'Login': return { phone: this.pick(PHONES), code: String(this.int(0, 999_999)).padStart(6, '0') };
      case 'Logout': return { token: `fuzz-${this.str(20)}` }; // never the live token: it must stay valid
      case 'GetBalance': return { token };
      case 'Recharge': return { token, amountCents: this.int(1, 1000), idempotencyKey: `fz-${this.str(this.int(1, 40))}` };
      case 'ListAccountRecords': return { token, cursor: '', limit: this.int(0, 100) };
      case 'FindNearbyBikes': return { lat, lng, radiusM: this.int(1, 5000), limit: this.int(0, 100) };
      case 'UnlockBike': return { token, bikeId: anyBike() };
      case 'EndRide': return { token, rideId: this.int(1, 1_000_000), lat, lng };
      case 'ListRides': return { token, cursor: '', limit: this.int(0, 100) };
    }
  }

  garbageLength(): number {
    const r = this.rnd();
    if (r < 0.7) return this.int(0, 64);
    if (r < 0.97) return this.int(65, 2048);
    return this.int(2049, this.o.maxBodyBytes ?? 65536);
  }

  /** An unknown type id, or one a client may not send. */
  unknownType(): number {
    for (;;) {
      const r = this.rnd();
      const t = r < 0.2 ? this.pick([MessageType.Error, MessageType.ServerNotice]) : r < 0.5 ? 0x8000 | this.int(0, 0x7fff) : this.int(0, 0xffff);
      if (!KNOWN.has(t)) return t;
    }
  }
}

function decodes(entry: TypeEntry, body: Buffer): boolean {
  try {
    codec(entry.request).decode(body);
    return true;
  } catch {
    return false;
  }
}

interface Planned {
  frame: Buffer;
  requestId: number;
  expect: Expect;
  kind: string;
}

/** One frame whose framing is sound (the length is the body's). */
function plan(g: Gen, requestId: number): Planned {
  const entry = g.pick(REQUESTS);
  const r = g.rnd();
  const validBody = () => Buffer.from(codec<object>(entry.request).encode(g.valid(entry)));
  let kind: string;
  let type = entry.id;
  let body: Buffer;
  if (r < 0.2) {
    kind = 'valid';
    body = validBody();
  } else if (r < 0.45) {
    kind = 'flipped';
    body = validBody();
    if (body.length === 0) body = g.bytes(g.int(1, 8));
    for (let i = g.int(1, 4); i > 0; i--) body[g.int(0, body.length - 1)] ^= g.int(1, 255);
  } else if (r < 0.6) {
    kind = 'truncated';
    const full = validBody();
    body = full.subarray(0, full.length ? g.int(0, full.length - 1) : 0);
  } else if (r < 0.68) {
    kind = 'other-type';
    const other = g.pick(REQUESTS);
    body = Buffer.from(codec<object>(other.request).encode(g.valid(other)));
  } else if (r < 0.78) {
    kind = 'unknown-type';
    type = g.unknownType();
    body = g.rnd() < 0.5 ? validBody() : g.bytes(g.garbageLength());
  } else {
    kind = 'garbage';
    body = g.bytes(g.garbageLength());
  }
  const what = `${kind} type 0x${type.toString(16)} len ${body.length}`;
  let expect: Expect;
  if (!KNOWN.has(type)) expect = { kind: 'exact', code: ErrorCode.UNKNOWN_TYPE, requestId, what };
  else if (requestId === 0) expect = { kind: 'exact', code: ErrorCode.BAD_REQUEST, requestId: 0, what };
  else if (!decodes(entry, body)) expect = { kind: 'exact', code: ErrorCode.BAD_REQUEST, requestId, what };
  else expect = { kind: 'answer', type: type | 0x8000, badRequestOk: kind !== 'valid', what };
  return { frame: encodeFrame(type, requestId, body), requestId, expect, kind };
}

/** A frame that breaks the stream; the server answers it last and closes. */
function terminal(g: Gen, requestId: number, maxBody: number): Planned {
  if (g.rnd() < 0.5) {
    const frame = encodeFrame(MessageType.Ping, requestId, Buffer.alloc(0));
    let magic = g.int(0, 0xffff);
    if (magic === MAGIC) magic ^= 1;
    frame.writeUInt16BE(magic, 0);
    return { frame, requestId: 0, expect: { kind: 'exact', code: ErrorCode.BAD_FRAME, requestId: 0, what: 'bad magic' }, kind: 'bad-magic' };
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(MAGIC, 0);
  header.writeUInt16BE(g.pick(REQUESTS).id, 2);
  header.writeUInt32BE(requestId, 4);
  header.writeUInt32BE(g.rnd() < 0.5 ? maxBody + 1 : g.int(maxBody + 1, 0xffffffff), 8);
  // Some bytes of the announced body follow: they must not be waited for.
  const frame = Buffer.concat([header, g.bytes(g.int(0, 64))]);
  return { frame, requestId, expect: { kind: 'exact', code: ErrorCode.FRAME_TOO_LARGE, requestId, what: 'length over the limit' }, kind: 'too-large' };
}

class Tally {
  frames = 0;
  answers = 0;
  closedByFault = 0;
  opened = 0;
  rejections = 0;
  byKind: Record<string, number> = {};
  byAnswer: Record<string, number> = {};
  problems: string[] = [];
  problem(p: string): void {
    if (this.problems.length < 30) this.problems.push(p);
  }
}

/** Checks one received frame against its expectation; returns whether it was a rejection. */
function judge(frame: Frame, expect: Expect, t: Tally): void {
  const err = errorOf(frame);
  const label = err ? errorName(err.code) : 'OK';
  t.byAnswer[label] = (t.byAnswer[label] ?? 0) + 1;
  t.answers++;
  if (err && (err.code === ErrorCode.UNKNOWN_TYPE || err.code === ErrorCode.BAD_REQUEST || err.code === ErrorCode.BAD_FRAME || err.code === ErrorCode.FRAME_TOO_LARGE)) t.rejections++;
  if (expect.kind === 'never') return t.problem(`answer to a frame sent after a framing error (${expect.what})`);
  if (expect.kind === 'exact') {
    if (!err || err.code !== expect.code) t.problem(`${expect.what}: want ${errorName(expect.code)}, got ${err ? errorName(err.code) : `type 0x${frame.type.toString(16)}`}`);
    return;
  }
  if (err) {
    if (FATAL.has(err.code) || (err.code === ErrorCode.BAD_REQUEST && !expect.badRequestOk)) t.problem(`${expect.what}: unexpected ${errorName(err.code)} (${err.message})`);
  } else if (frame.type !== expect.type) t.problem(`${expect.what}: answer type 0x${frame.type.toString(16)}`);
}

async function fuzzConnection(g: Gen, o: FuzzOptions, t: Tally, quota: { left: number }): Promise<void> {
  const maxBody = o.maxBodyBytes ?? 65536;
  while (quota.left > 0) {
    const conn = await RawConn.open(o.server.port);
    t.opened++;
    let nextId = 1;
    let open = true;
    while (open && quota.left > 0) {
      const n = Math.min(quota.left, g.int(1, 32));
      quota.left -= n;
      const planned: Planned[] = [];
      let zeroUsed = false;
      for (let i = 0; i < n; i++) {
        const zero: boolean = !zeroUsed && g.rnd() < 0.01;
        zeroUsed ||= zero;
        planned.push(plan(g, zero ? 0 : nextId++));
      }
      const breaking = g.rnd() < 0.02;
      const trailing: Planned[] = [];
      if (breaking) {
        planned.push(terminal(g, nextId++, maxBody));
        for (let i = g.int(0, 3); i > 0; i--) {
          const p = plan(g, nextId++);
          trailing.push({ ...p, expect: { kind: 'never', what: p.expect.what } });
        }
      }
      for (const p of planned) t.byKind[p.kind] = (t.byKind[p.kind] ?? 0) + 1;
      t.frames += planned.length + trailing.length;
      const pending = new Map<number, Expect>(); // requestId -> expectation (0: the requestId-0 frame)
      const last = breaking ? planned[planned.length - 1] : null;
      for (const p of breaking ? planned.slice(0, -1) : planned) pending.set(p.requestId, p.expect);
      const never = new Map(trailing.map((p) => [p.requestId, p.expect]));
      // Send in 1..3 writes cut at random places, so frames straddle reads.
      const bytes = Buffer.concat([...planned, ...trailing].map((p) => p.frame));
      const cuts = [0, ...Array.from({ length: g.int(0, 2) }, () => g.int(0, bytes.length)).sort((a, b) => a - b), bytes.length];
      for (let i = 0; i + 1 < cuts.length; i++) if (cuts[i + 1] > cuts[i]) conn.write(bytes.subarray(cuts[i], cuts[i + 1]));

      let faultSeen = false;
      const done = () => pending.size === 0 && (!last || faultSeen);
      const deadline = Date.now() + 60_000;
      while (!done()) {
        const frame = await conn.next(Math.max(1, deadline - Date.now()));
        if (!frame) {
          t.problem(`connection ${conn.closed ? 'closed' : 'silent'} with ${pending.size} answer(s) owed${last && !faultSeen ? ' and the framing Error' : ''} (${[...pending.values()].slice(0, 2).map((e) => e.what).join('; ')})`);
          break;
        }
        const err = errorOf(frame);
        if (last && !faultSeen && err && (err.code === ErrorCode.BAD_FRAME || err.code === ErrorCode.FRAME_TOO_LARGE) && frame.requestId === last.requestId) {
          faultSeen = true;
          if (pending.size) t.problem(`framing Error arrived before ${pending.size} answer(s) owed`);
          judge(frame, last.expect, t);
          continue;
        }
        const expect = pending.get(frame.requestId) ?? never.get(frame.requestId);
        if (!expect) {
          t.problem(`answer with an unknown requestId ${frame.requestId} (type 0x${frame.type.toString(16)})`);
          continue;
        }
        pending.delete(frame.requestId);
        judge(frame, expect, t);
      }
      if (!done()) {
        conn.destroy();
        open = false;
      } else if (last) {
        // Then FIN, and nothing for the frames that followed the bad one.
        if (!(await conn.until(() => conn.gotEnd || conn.closed, 30_000))) t.problem(`no FIN after ${last.kind}`);
        else t.closedByFault++;
        await conn.until(() => conn.frames.length > 0, 50);
        for (const f of conn.frames.splice(0)) judge(f, never.get(f.requestId) ?? { kind: 'never', what: 'after the framing error' }, t);
        conn.destroy();
        open = false;
      }
    }
    if (open) conn.destroy();
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const t = new Tally();
  const primary = o.server.process.pid!;
  const pidsBefore = workerPids(primary);
  const rssBefore = new Map(pidsBefore.map((p) => [p, rssKb(p)]));
  const rejectedBefore = total(await scrape(o.server), 'bike_frames_rejected_total');
  const quota = { left: o.frames };
  const started = Date.now();
  const progress = setInterval(() => o.log?.(`fuzz: ${t.frames} frames, ${t.answers} answers, ${t.problems.length} problems, ${Math.round((t.frames * 1000) / (Date.now() - started))} frames/s`), 10_000);
  try {
    await Promise.all(Array.from({ length: o.connections }, (_, i) => fuzzConnection(new Gen(seed + i, o), o, t, quota)));
  } finally {
    clearInterval(progress);
  }
  const rejectedAfter = total(await scrape(o.server), 'bike_frames_rejected_total');
  const pidsAfter = workerPids(primary);
  if (o.server.process.exitCode !== null || o.server.process.signalCode !== null) t.problem('the primary exited');
  if (pidsAfter.join() !== pidsBefore.join()) t.problem(`worker pids changed: ${pidsBefore.join(',')} -> ${pidsAfter.join(',')} (a worker crashed)`);
  const bound = o.rssBoundKb ?? 150 * 1024;
  const workers = pidsBefore.map((pid) => ({ pid, rssBeforeKb: rssBefore.get(pid) ?? 0, rssAfterKb: rssKb(pid) }));
  for (const w of workers) if (w.rssAfterKb - w.rssBeforeKb > bound) t.problem(`worker ${w.pid} RSS grew ${w.rssBeforeKb} -> ${w.rssAfterKb} KiB (bound +${bound} KiB)`);
  const metricDelta = rejectedAfter - rejectedBefore;
  if (metricDelta !== t.rejections) t.problem(`bike_frames_rejected_total grew by ${metricDelta}, the fuzzer counted ${t.rejections} rejections`);
  return {
    seed,
    frames: t.frames,
    answers: t.answers,
    closedByFault: t.closedByFault,
    connectionsOpened: t.opened,
    rejectionsCounted: t.rejections,
    rejectionsMetric: metricDelta,
    byKind: t.byKind,
    byAnswer: t.byAnswer,
    workers,
    problems: t.problems,
  };
}
