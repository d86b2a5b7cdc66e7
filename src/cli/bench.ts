// `bikeshare bench`: a closed-loop load generator. C connections, each
// keeping D requests in flight (D "lanes" per connection, each sending its
// next request as soon as its last one is answered), for a warmup and then a
// measured window. Every request's latency goes into a perf_hooks histogram
// (HDR, 3 significant figures); the report gives QPS, p50..max, errors by
// code and the generator's own CPU use, so a reader can tell the generator
// was not the bottleneck. Setup (users, bikes, balances) is done before the
// clock starts and is not measured.
//
// Cheapness: requests go through ClientConnection.call (no SDK wrapper),
// bodies are encoded once where they do not change (Ping, GetBalance, ...),
// answers are decoded only when the next request needs something from them.
// `--procs N` runs N generator threads (worker_threads: separate event loops
// on separate cores); their histograms are transferred to the main thread
// and merged exactly with RecordableHistogram.add().
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { randomInt, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { ClientConnection, type ConnectOptions } from '../client/connection.js';
import { BikeClient, ClientError, ServerError } from '../client/client.js';
import { codec } from '../protocol/codec.js';
import { MessageType } from '../protocol/types.js';
import { ErrorCode } from '../protocol/messages.js';
import type * as m from '../protocol/messages.js';
import { clientOptions, connectFlags } from './connect.js';

export const SCENARIOS = ['ping', 'code', 'login', 'balance', 'recharge', 'ride', 'mixed'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const DEFAULT_MIX = { balance: 40, nearby: 20, records: 15, recharge: 10, code: 10, ride: 5 };
export type MixOp = keyof typeof DEFAULT_MIX;
const MIX_OPS = Object.keys(DEFAULT_MIX) as MixOp[];

/** Where the bench puts (and looks for) its bikes unless told otherwise: the demo's point. */
export const DEFAULT_CENTER = { lat: 31.2304, lng: 121.4737 };

/** A problem found before the clock starts (wrong server settings, missing bikes): printed as is. */
export class BenchSetupError extends Error {}

export interface BenchOptions {
  scenario: Scenario;
  connect: ConnectOptions;
  connections: number;
  depth: number;
  durationS: number;
  warmupS: number;
  /** generator threads; 1 = everything in this thread */
  procs?: number;
  timeoutMs?: number;
  /** bikes the ride/mixed lanes use (one per lane); otherwise seeded through mysqlUrl */
  bikeIds?: number[];
  /** the server's database, for seeding bikes */
  mysqlUrl?: string;
  center?: { lat: number; lng: number };
  mix?: Partial<Record<MixOp, number>>;
  /** live progress on stderr: true, false, or 'auto' (default: once a second on a TTY, else every 5 s) */
  progress?: boolean | 'auto';
  /** shown in the progress line */
  label?: string;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface BenchResult {
  scenario: Scenario;
  target: string;
  connections: number;
  depth: number;
  procs: number;
  warmupS: number;
  /** the measured window as it really was */
  durationS: number;
  setupS: number;
  /** requests answered in the window (answers and errors) */
  requests: number;
  qps: number;
  errors: number;
  errorsByCode: Record<string, number>;
  /** latency of every request answered in the window, milliseconds */
  latencyMs: LatencySummary;
  /** login: RequestCode+Login, ride: UnlockBike+EndRide (both answered OK) */
  pairs?: number;
  pairsPerS?: number;
  pairLatencyMs?: LatencySummary;
  byType: Record<string, { requests: number; qps: number; errors: number; latencyMs: LatencySummary }>;
  generatorCpu: { percentOfOneCore: number; userS: number; systemS: number; cores: number };
}

// ---------------------------------------------------------------------------
// What each generator thread is given.

interface LanePlan {
  token: string;
  bikeId: number;
}

interface ThreadPlan {
  bikeBench: true;
  index: number;
  scenario: Scenario;
  connect: ConnectOptions;
  /** the connections of this thread, each with its lanes */
  conns: LanePlan[][];
  timeoutMs: number;
  runTag: string;
  center: { lat: number; lng: number };
  mix: [MixOp, number][];
  /** Int32 [phase] */
  control: SharedArrayBuffer;
  /** Int32 [done, errors] per thread, for the progress line */
  counters: SharedArrayBuffer;
}

interface ThreadResult {
  hist: RecordableHistogram;
  pairHist: RecordableHistogram;
  byType: Map<string, { hist: RecordableHistogram; errors: number }>;
  errorsByCode: Record<string, number>;
  requests: number;
  errors: number;
  pairs: number;
}

type ToMain = { kind: 'ready' } | { kind: 'failed'; message: string } | ({ kind: 'result' } & ThreadResult);

const WARMUP = 1;
const MEASURE = 2;
const STOP = 3;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const C = {
  ping: codec<m.Ping>('Ping'),
  requestCode: codec<m.RequestCode>('RequestCode'),
  requestCodeReply: codec<m.RequestCodeReply>('RequestCodeReply'),
  login: codec<m.Login>('Login'),
  getBalance: codec<m.GetBalance>('GetBalance'),
  recharge: codec<m.Recharge>('Recharge'),
  records: codec<m.ListAccountRecords>('ListAccountRecords'),
  nearby: codec<m.FindNearbyBikes>('FindNearbyBikes'),
  unlock: codec<m.UnlockBike>('UnlockBike'),
  rideStarted: codec<m.RideStarted>('RideStarted'),
  endRide: codec<m.EndRide>('EndRide'),
  rideEnded: codec<m.RideEnded>('RideEnded'),
};

function errorName(err: unknown): string {
  if (err instanceof ServerError || err instanceof ClientError) return err.codeName;
  return 'EXCEPTION';
}

/** A phone no other bench thread of this run uses: +1, run tag (3), thread (2), counter (8). */
function phoneOf(runTag: string, thread: number, n: number): string {
  return `+1${runTag}${String(thread).padStart(2, '0')}${String(n % 100_000_000).padStart(8, '0')}`;
}

// ---------------------------------------------------------------------------
// One connection with its reconnect (a closed connection is opened again;
// its lanes wait for that instead of spinning on CLOSED).

class Slot {
  conn: ClientConnection | null = null;
  private reopening: Promise<ClientConnection> | null = null;

  constructor(
    private readonly options: ConnectOptions,
    private readonly stopped: () => boolean,
  ) {}

  async open(): Promise<void> {
    this.conn = await ClientConnection.open(this.options);
  }

  get(): ClientConnection | Promise<ClientConnection> {
    const c = this.conn;
    if (c && !c.closed && !c.draining) return c;
    this.reopening ??= (async () => {
      for (;;) {
        if (this.stopped()) throw new ClientError('CLOSED', 'bench stopped');
        try {
          const fresh = await ClientConnection.open(this.options);
          this.conn = fresh;
          return fresh;
        } catch {
          await sleep(200);
        }
      }
    })().finally(() => (this.reopening = null));
    return this.reopening;
  }

  destroy(): void {
    this.conn?.destroy();
  }
}

// ---------------------------------------------------------------------------
// The generator of one thread.

class Generator {
  private readonly hist = createHistogram();
  private readonly pairHist = createHistogram();
  private readonly byType = new Map<string, { hist: RecordableHistogram; errors: number }>();
  private readonly errorsByCode: Record<string, number> = {};
  private requests = 0;
  private errors = 0;
  private pairs = 0;
  private done = 0;
  private failed = 0;
  private seq = 0;
  private readonly control: Int32Array;
  private readonly counters: Int32Array;
  private readonly slots: Slot[];
  private readonly connect: ConnectOptions;
  private readonly pingBody = C.ping.encode({ nonce: 0 });
  private readonly nearbyBody: Uint8Array;
  private readonly mixTotal: number;

  constructor(private readonly plan: ThreadPlan) {
    this.control = new Int32Array(plan.control);
    this.counters = new Int32Array(plan.counters);
    const tls = plan.connect.tls;
    // A CA crosses threads as a Uint8Array.
    const fixedTls = tls && typeof tls === 'object' && tls.ca && !Buffer.isBuffer(tls.ca) ? { ...tls, ca: Buffer.from(tls.ca as unknown as Uint8Array) } : tls;
    const depth = Math.max(1, ...plan.conns.map((c) => c.length));
    this.connect = { ...plan.connect, tls: fixedTls, maxInflight: Math.max(depth, 1) };
    this.slots = plan.conns.map(() => new Slot(this.connect, () => this.phase() === STOP));
    this.nearbyBody = C.nearby.encode({ lat: plan.center.lat, lng: plan.center.lng, radiusM: 500, limit: 20 });
    this.mixTotal = plan.mix.reduce((s, [, w]) => s + w, 0);
  }

  private phase(): number {
    return Atomics.load(this.control, 0);
  }

  async open(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.open()));
  }

  async run(): Promise<void> {
    const lanes: Promise<void>[] = [];
    this.plan.conns.forEach((conn, i) => conn.forEach((lane) => lanes.push(this.lane(this.slots[i], lane))));
    await Promise.all(lanes);
  }

  close(): void {
    for (const s of this.slots) s.destroy();
  }

  result(): ThreadResult {
    return {
      hist: this.hist,
      pairHist: this.pairHist,
      byType: this.byType,
      errorsByCode: this.errorsByCode,
      requests: this.requests,
      errors: this.errors,
      pairs: this.pairs,
    };
  }

  private record(name: string, t0: number, err: string | null): void {
    this.done++;
    if (err) this.failed++;
    const slot = this.plan.index * 2;
    Atomics.store(this.counters, slot, this.done);
    if (err) Atomics.store(this.counters, slot + 1, this.failed);
    if (this.phase() !== MEASURE) return;
    const ns = Math.max(1, Math.round((performance.now() - t0) * 1e6));
    this.hist.record(ns);
    let t = this.byType.get(name);
    if (!t) this.byType.set(name, (t = { hist: createHistogram(), errors: 0 }));
    t.hist.record(ns);
    this.requests++;
    if (err) {
      this.errors++;
      t.errors++;
      this.errorsByCode[err] = (this.errorsByCode[err] ?? 0) + 1;
    }
  }

  private recordPair(t0: number): void {
    if (this.phase() !== MEASURE) return;
    this.pairs++;
    this.pairHist.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
  }

  /** One request; null when it failed (already counted). */
  private async req(slot: Slot, type: number, name: string, body: Uint8Array): Promise<Buffer | null> {
    const got = slot.get();
    const conn = got instanceof ClientConnection ? got : await got;
    const t0 = performance.now();
    try {
      const answer = await conn.call(type, body, this.plan.timeoutMs);
      this.record(name, t0, null);
      return answer;
    } catch (err) {
      this.record(name, t0, errorName(err));
      return null;
    }
  }

  private phone(): string {
    return phoneOf(this.plan.runTag, this.plan.index, this.seq++);
  }

  private key(): string {
    return `b${this.plan.runTag}-${this.plan.index}-${this.seq++}`;
  }

  private async lane(slot: Slot, lane: LanePlan): Promise<void> {
    const op = this.operation(slot, lane);
    while (this.phase() < STOP) {
      let ok = false;
      try {
        ok = await op();
      } catch {
        ok = false; // a connection that could not be reopened, at the stop
      }
      if (!ok && this.phase() < STOP) await sleep(10); // errors back off instead of spinning
    }
  }

  private operation(slot: Slot, lane: LanePlan): () => Promise<boolean> {
    const ok = (b: Buffer | null) => b !== null;
    const balanceBody = lane.token ? C.getBalance.encode({ token: lane.token }) : null;
    const recordsBody = lane.token ? C.records.encode({ token: lane.token, limit: 20 }) : null;
    const unlockBody = lane.bikeId ? C.unlock.encode({ token: lane.token, bikeId: lane.bikeId }) : null;
    const ops: Record<MixOp | 'ping' | 'login', () => Promise<boolean>> = {
      ping: () => this.req(slot, MessageType.Ping, 'Ping', this.pingBody).then(ok),
      code: () => this.req(slot, MessageType.RequestCode, 'RequestCode', C.requestCode.encode({ phone: this.phone() })).then(ok),
      login: async () => {
        const t0 = performance.now();
        const phone = this.phone();
        const sent = await this.req(slot, MessageType.RequestCode, 'RequestCode', C.requestCode.encode({ phone }));
        if (!sent) return false;
        const code = C.requestCodeReply.decode(sent).debugCode;
        if (!(await this.req(slot, MessageType.Login, 'Login', C.login.encode({ phone, code })))) return false;
        this.recordPair(t0);
        return true;
      },
      balance: () => this.req(slot, MessageType.GetBalance, 'GetBalance', balanceBody!).then(ok),
      records: () => this.req(slot, MessageType.ListAccountRecords, 'ListAccountRecords', recordsBody!).then(ok),
      nearby: () => this.req(slot, MessageType.FindNearbyBikes, 'FindNearbyBikes', this.nearbyBody).then(ok),
      recharge: () =>
        this.req(slot, MessageType.Recharge, 'Recharge', C.recharge.encode({ token: lane.token, amountCents: 1, idempotencyKey: this.key() })).then(ok),
      ride: async () => {
        const t0 = performance.now();
        const started = await this.req(slot, MessageType.UnlockBike, 'UnlockBike', unlockBody!);
        if (!started) return false;
        const rideId = C.rideStarted.decode(started).rideId;
        const { lat, lng } = this.plan.center;
        const ended = await this.req(slot, MessageType.EndRide, 'EndRide', C.endRide.encode({ token: lane.token, rideId, lat, lng }));
        if (!ended) return false;
        this.recordPair(t0);
        // Fares are paid from the balance given in setup; top it up long before unlocks would be refused.
        if (C.rideEnded.decode(ended).balanceCents < 200_000) {
          await this.req(slot, MessageType.Recharge, 'Recharge', C.recharge.encode({ token: lane.token, amountCents: 1_000_000, idempotencyKey: this.key() }));
        }
        return true;
      },
    };
    const s = this.plan.scenario;
    if (s !== 'mixed') return ops[s];
    const mix = this.plan.mix;
    return () => {
      let r = Math.random() * this.mixTotal;
      for (const [op, w] of mix) {
        if (r < w) return ops[op]();
        r -= w;
      }
      return ops[mix[mix.length - 1][0]]();
    };
  }
}

// ---------------------------------------------------------------------------
// Generator threads.

function spawnThread(plan: ThreadPlan): Worker {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    // Running from source under tsx: a worker does not inherit tsx's hooks on Node 20, so register them first.
    const api = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(self)}); });`;
    return new Worker(boot, { eval: true, workerData: plan });
  }
  return new Worker(new URL(self), { workerData: plan });
}

async function threadMain(plan: ThreadPlan): Promise<void> {
  const port = parentPort!;
  const gen = new Generator(plan);
  try {
    await gen.open();
  } catch (err) {
    port.postMessage({ kind: 'failed', message: (err as Error).message } satisfies ToMain);
    return;
  }
  port.once('message', async () => {
    await gen.run();
    gen.close();
    port.postMessage({ kind: 'result', ...gen.result() } satisfies ToMain);
  });
  port.postMessage({ kind: 'ready' } satisfies ToMain);
}

if (!isMainThread && (workerData as { bikeBench?: unknown } | null)?.bikeBench === true) void threadMain(workerData as ThreadPlan);

/** Runs the plans in threads (procs > 1) or here; same interface either way. */
interface Runner {
  ready: Promise<void>;
  go(): void;
  results: Promise<ThreadResult[]>;
  kill(): void;
}

function localRunner(plan: ThreadPlan): Runner {
  const gen = new Generator(plan);
  let go!: () => void;
  const started = new Promise<void>((r) => (go = r));
  const ready = gen.open();
  const results = ready.then(async () => {
    await started;
    await gen.run();
    gen.close();
    return [gen.result()];
  });
  results.catch(() => undefined);
  return { ready, go, results, kill: () => gen.close() };
}

function threadRunner(plans: ThreadPlan[]): Runner {
  const workers = plans.map(spawnThread);
  const ready = Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`generator thread exited (${code}) before it was ready`)));
          w.once('message', (msg: ToMain) => (msg.kind === 'ready' ? resolve() : reject(new Error(msg.kind === 'failed' ? msg.message : 'unexpected message'))));
        }),
    ),
  ).then(() => undefined);
  ready.catch(() => undefined);
  const results = ready.then(() =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise<ThreadResult>((resolve, reject) => {
            w.removeAllListeners('exit');
            w.removeAllListeners('error');
            w.once('error', reject);
            w.once('exit', (code) => reject(new Error(`generator thread exited (${code}) without a result`)));
            w.once('message', (msg: ToMain) => {
              if (msg.kind === 'result') resolve(msg);
              else reject(new Error('unexpected message from a generator thread'));
            });
          }),
      ),
    ),
  );
  results.catch(() => undefined);
  return {
    ready,
    go: () => workers.forEach((w) => w.postMessage('go')),
    results,
    kill: () => workers.forEach((w) => void w.terminate()),
  };
}

// ---------------------------------------------------------------------------
// Setup: users, balances and bikes, before the clock starts.

async function mapLimit<T>(count: number, limit: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await work(i);
      }
    }),
  );
  return out;
}

const SERVER_SETTINGS_HINT =
  'run the server with BIKE_SMS_SENDER=echo BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE=0 BIKE_CODE_RESEND_SECONDS=0 (never in production)';

/**
 * The server must echo codes and must not rate-limit the bench. Asks twice for
 * the same phone (a resend interval answers RATE_LIMITED) and then for 60 more
 * phones at once (the default per-address limit is 60 a minute); returns the
 * code of the phone asked for.
 */
async function probeCodes(client: BikeClient, phone: string, morePhones: () => string): Promise<string> {
  const ask = async (p: string) => {
    try {
      return await client.requestCode(p);
    } catch (err) {
      if (err instanceof ServerError && err.code === ErrorCode.RATE_LIMITED) {
        throw new BenchSetupError(`bench: RequestCode answered RATE_LIMITED (${err.message}): ${SERVER_SETTINGS_HINT}`);
      }
      throw err;
    }
  };
  const first = await ask(phone);
  if (!first.debugCode) throw new BenchSetupError(`bench: RequestCode answered an empty debug_code (the server does not echo codes): ${SERVER_SETTINGS_HINT}`);
  const again = await ask(phone);
  await Promise.all(Array.from({ length: 60 }, () => ask(morePhones())));
  return again.debugCode;
}

async function createUser(client: BikeClient, phone: string, code?: string): Promise<string> {
  try {
    const debugCode = code ?? (await client.requestCode(phone)).debugCode;
    if (!debugCode) throw new BenchSetupError(`bench: RequestCode answered an empty debug_code: ${SERVER_SETTINGS_HINT}`);
    return (await client.request<m.LoginReply>('Login', { phone, code: debugCode })).token;
  } catch (err) {
    if (err instanceof ServerError && err.code === ErrorCode.RATE_LIMITED) {
      throw new BenchSetupError(`bench: RATE_LIMITED while creating the bench's users (${err.message}): ${SERVER_SETTINGS_HINT}`);
    }
    throw err;
  }
}

/**
 * Setup calls whose outcome is unknown (INTERNAL, SERVICE_UNAVAILABLE) are
 * retried as they are, as the protocol allows: a Recharge keeps its key. (The
 * server answers INTERNAL when MariaDB picks a concurrent Recharge as a
 * deadlock victim; the measured run counts those as errors, setup retries.)
 */
async function retried<T>(call: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      const unknown = err instanceof ServerError && (err.code === ErrorCode.INTERNAL || err.code === ErrorCode.SERVICE_UNAVAILABLE);
      if (!unknown || i >= attempts) throw err;
      await sleep(10 * i + Math.random() * 20);
    }
  }
}

/** Names the setup step a server error came from. */
async function step<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ServerError || err instanceof ClientError) throw new BenchSetupError(`bench setup: ${what}: ${err.message}`);
    throw err;
  }
}

async function seedBikes(mysqlUrl: string, count: number, center: { lat: number; lng: number }): Promise<{ ids: number[]; first: { lat: number; lng: number } }> {
  const [{ Db }, { BikeService }, { systemClock }] = await Promise.all([
    import('../stores/mysql.js'),
    import('../services/bikes.js'),
    import('../clock.js'),
  ]);
  const options = { url: mysqlUrl, poolSize: 8, timeoutMs: 10_000 };
  const db = new Db(options);
  try {
    const bikes = new BikeService(db, systemClock);
    const chunks = 8;
    const per = Math.ceil(count / chunks);
    const parts = await Promise.all(Array.from({ length: chunks }, (_, i) => bikes.seed(Math.max(0, Math.min(per, count - i * per)), center.lat, center.lng, 1000)));
    const ids = parts.flat();
    const [first] = await db.rows<{ lat: number; lng: number }>('SELECT lat, lng FROM bikes WHERE id = ?', [ids[0]]);
    return { ids, first: { lat: Number(first.lat), lng: Number(first.lng) } };
  } catch (err) {
    if (err instanceof BenchSetupError) throw err;
    throw new BenchSetupError(`bench: could not seed bikes through ${mysqlUrl.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`);
  } finally {
    await db.close();
  }
}

interface Setup {
  conns: LanePlan[][];
}

async function prepare(o: BenchOptions, runTag: string, mix: [MixOp, number][]): Promise<Setup> {
  const { scenario, connections, depth } = o;
  const lanes = connections * depth;
  const usesMix = (op: MixOp) => scenario === 'mixed' && mix.some(([k]) => k === op);
  const needsCodes = scenario === 'code' || scenario === 'login' || usesMix('code');
  const usersPer: 'none' | 'conn' | 'lane' = scenario === 'balance' ? 'conn' : scenario === 'recharge' || scenario === 'ride' || scenario === 'mixed' ? 'lane' : 'none';
  const needsBikes = scenario === 'ride' || usesMix('ride');
  const conns: LanePlan[][] = Array.from({ length: connections }, () => Array.from({ length: depth }, () => ({ token: '', bikeId: 0 })));
  if (!needsCodes && usersPer === 'none' && !needsBikes) return { conns };

  const clients: BikeClient[] = [];
  try {
    for (let i = 0; i < Math.min(4, connections); i++) clients.push(await BikeClient.connect({ ...o.connect, timeoutMs: 30_000, maxInflight: 64 }));
  } catch (err) {
    for (const c of clients) c.close();
    throw new BenchSetupError(`bench: cannot connect to ${o.connect.host}:${o.connect.port}: ${(err as Error).message}`);
  }
  try {
    let n = 0;
    const setupPhone = () => phoneOf(runTag, 99, n++);
    const firstPhone = setupPhone();
    const firstCode = await step('RequestCode (probe)', () => probeCodes(clients[0], firstPhone, setupPhone));

    let bikes: number[] = [];
    if (needsBikes) {
      if (o.bikeIds?.length) {
        if (o.bikeIds.length < lanes) throw new BenchSetupError(`bench: ${scenario} needs one bike per lane (${lanes}); --bike-ids gave ${o.bikeIds.length}`);
        bikes = o.bikeIds.slice(0, lanes);
      } else {
        if (!o.mysqlUrl) {
          throw new BenchSetupError(`bench: ${scenario} needs bikes of its own: pass --bike-ids (${lanes} ids, one per lane) or set BIKE_MYSQL_URL (or --mysql-url) to the server's database so the bench can seed them`);
        }
        const seeded = await seedBikes(o.mysqlUrl, lanes, o.center ?? DEFAULT_CENTER);
        // The server must see them: the first one, searched for exactly where it stands.
        const found = await step('FindNearbyBikes (are the seeded bikes visible?)', () => clients[0].nearbyBikes({ lat: seeded.first.lat, lng: seeded.first.lng, radiusM: 1, limit: 100 }));
        if (!found.bikes.some((b) => b.bikeId === seeded.ids[0])) {
          throw new BenchSetupError('bench: the bikes seeded through BIKE_MYSQL_URL are not visible to the server: it must name the database the server uses');
        }
        bikes = seeded.ids;
      }
    }

    if (usersPer !== 'none') {
      const count = usersPer === 'conn' ? connections : lanes;
      const phones = Array.from({ length: count }, (_, i) => (i === 0 ? firstPhone : setupPhone()));
      const tokens = await step(`logging in ${count} users`, () => mapLimit(count, 64, (i) => createUser(clients[i % clients.length], phones[i], i === 0 ? firstCode : undefined)));
      if (needsBikes) {
        // Fares come out of this; the ride lanes top it up as they go.
        await step(`recharging ${count} users`, () =>
          // Few at a time: concurrent first recharges of new users deadlock in the server (see retried()).
          mapLimit(count, 4, (i) => {
            const idempotencyKey = `setup-${runTag}-${randomBytes(6).toString('hex')}-${i}`;
            return retried(() => clients[i % clients.length].request('Recharge', { token: tokens[i], amountCents: 1_000_000, idempotencyKey }));
          }),
        );
      }
      conns.forEach((lanesOf, c) =>
        lanesOf.forEach((lane, d) => {
          lane.token = tokens[usersPer === 'conn' ? c : c * depth + d];
        }),
      );
    }
    if (needsBikes) conns.forEach((lanesOf, c) => lanesOf.forEach((lane, d) => (lane.bikeId = bikes[c * depth + d])));
    return { conns };
  } finally {
    for (const c of clients) c.close();
  }
}

// ---------------------------------------------------------------------------
// The run.

const nsToMs = (ns: number) => Math.round(ns / 1e3) / 1e3; // ms with microsecond resolution

function summary(h: RecordableHistogram): LatencySummary {
  if (h.count === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return { p50: nsToMs(h.percentile(50)), p90: nsToMs(h.percentile(90)), p99: nsToMs(h.percentile(99)), p999: nsToMs(h.percentile(99.9)), max: nsToMs(h.max), mean: nsToMs(h.mean) };
}

function parseMix(mix: Partial<Record<MixOp, number>> | undefined): [MixOp, number][] {
  const weights = { ...DEFAULT_MIX, ...(mix ?? {}) };
  const list = MIX_OPS.map((op) => [op, weights[op]] as [MixOp, number]).filter(([, w]) => w > 0);
  if (!list.length) throw new BenchSetupError('bench: --mix leaves no operation with a weight above 0');
  return list;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const o = { ...options, procs: options.procs ?? 1, timeoutMs: options.timeoutMs ?? 10_000, progress: options.progress ?? 'auto' };
  if (!SCENARIOS.includes(o.scenario)) throw new BenchSetupError(`bench: --scenario must be one of ${SCENARIOS.join(', ')}`);
  for (const [name, v, min] of [['connections', o.connections, 1], ['depth', o.depth, 1], ['procs', o.procs, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new BenchSetupError(`bench: --${name} must be an integer >= ${min}`);
  }
  if (!(o.durationS > 0) || !(o.warmupS >= 0)) throw new BenchSetupError('bench: --duration must be > 0 and --warmup >= 0');
  const procs = Math.min(o.procs, o.connections, 99);
  const runTag = String(randomInt(100, 1000));
  const mix = parseMix(o.mix);

  const setupStarted = performance.now();
  const setup = await prepare(o, runTag, mix);
  const setupS = (performance.now() - setupStarted) / 1000;

  const control = new SharedArrayBuffer(4);
  const counters = new SharedArrayBuffer(4 * 2 * procs);
  const phase = new Int32Array(control);
  const counts = new Int32Array(counters);
  const plans: ThreadPlan[] = Array.from({ length: procs }, (_, index) => ({
    bikeBench: true,
    index,
    scenario: o.scenario,
    connect: o.connect,
    conns: setup.conns.filter((_, c) => c % procs === index),
    timeoutMs: o.timeoutMs,
    runTag,
    center: o.center ?? DEFAULT_CENTER,
    mix,
    control,
    counters,
  }));
  const runner = procs === 1 ? localRunner(plans[0]) : threadRunner(plans);
  try {
    await runner.ready;
  } catch (err) {
    runner.kill();
    throw new BenchSetupError(`bench: cannot open ${o.connections} connections to ${o.connect.host}:${o.connect.port}: ${(err as Error).message}`);
  }

  // Progress: once a second on a terminal, a line every 5 s otherwise.
  const tty = Boolean(process.stderr.isTTY);
  const showProgress = o.progress === 'auto' ? true : o.progress;
  const every = tty ? 1000 : 5000;
  const t0 = performance.now();
  let last = { t: t0, done: 0 };
  const total = () => {
    let done = 0;
    let errors = 0;
    for (let i = 0; i < procs; i++) {
      done += Atomics.load(counts, i * 2);
      errors += Atomics.load(counts, i * 2 + 1);
    }
    return { done, errors };
  };
  const progress = showProgress
    ? setInterval(() => {
        const now = performance.now();
        const { done, errors } = total();
        const qps = ((done - last.done) * 1000) / (now - last.t);
        last = { t: now, done };
        const p = Atomics.load(phase, 0);
        const line = `[bench ${o.label ?? o.scenario}] ${((now - t0) / 1000).toFixed(0)}s ${p === WARMUP ? 'warmup ' : ''}qps ${qps.toFixed(0)} errors ${errors}`;
        process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      }, every)
    : null;

  let window = { startedAt: 0, endedAt: 0, cpu: process.cpuUsage(), cpuDelta: { user: 0, system: 0 } };
  try {
    Atomics.store(phase, 0, o.warmupS > 0 ? WARMUP : MEASURE);
    runner.go();
    if (o.warmupS > 0) {
      await sleep(o.warmupS * 1000);
      Atomics.store(phase, 0, MEASURE);
    }
    window = { startedAt: performance.now(), endedAt: 0, cpu: process.cpuUsage(), cpuDelta: { user: 0, system: 0 } };
    await sleep(o.durationS * 1000);
    Atomics.store(phase, 0, STOP);
    window.endedAt = performance.now();
    window.cpuDelta = process.cpuUsage(window.cpu);
  } finally {
    Atomics.store(phase, 0, STOP);
    if (progress) clearInterval(progress);
    if (progress && tty) process.stderr.write('\r\x1b[K');
  }
  let results: ThreadResult[];
  try {
    results = await runner.results;
  } catch (err) {
    runner.kill();
    throw err;
  }

  const seconds = (window.endedAt - window.startedAt) / 1000;
  const hist = createHistogram();
  const pairHist = createHistogram();
  const byType = new Map<string, { hist: RecordableHistogram; errors: number }>();
  const errorsByCode: Record<string, number> = {};
  let requests = 0;
  let errors = 0;
  let pairs = 0;
  for (const r of results) {
    hist.add(r.hist);
    pairHist.add(r.pairHist);
    requests += r.requests;
    errors += r.errors;
    pairs += r.pairs;
    for (const [code, n] of Object.entries(r.errorsByCode)) errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
    for (const [name, t] of r.byType) {
      const into = byType.get(name);
      if (into) {
        into.hist.add(t.hist);
        into.errors += t.errors;
      } else {
        const h = createHistogram();
        h.add(t.hist);
        byType.set(name, { hist: h, errors: t.errors });
      }
    }
  }
  const rate = (n: number) => Math.round((n / seconds) * 10) / 10;
  const cpuS = { user: window.cpuDelta.user / 1e6, system: window.cpuDelta.system / 1e6 };
  const result: BenchResult = {
    scenario: o.scenario,
    target: `${o.connect.host}:${o.connect.port}`,
    connections: o.connections,
    depth: o.depth,
    procs,
    warmupS: o.warmupS,
    durationS: Math.round(seconds * 1000) / 1000,
    setupS: Math.round(setupS * 1000) / 1000,
    requests,
    qps: rate(requests),
    errors,
    errorsByCode,
    latencyMs: summary(hist),
    byType: Object.fromEntries(
      [...byType].sort(([, a], [, b]) => b.hist.count - a.hist.count).map(([name, t]) => [name, { requests: t.hist.count, qps: rate(t.hist.count), errors: t.errors, latencyMs: summary(t.hist) }]),
    ),
    generatorCpu: {
      percentOfOneCore: Math.round(((cpuS.user + cpuS.system) / seconds) * 1000) / 10,
      userS: Math.round(cpuS.user * 100) / 100,
      systemS: Math.round(cpuS.system * 100) / 100,
      cores: availableParallelism(),
    },
  };
  if (o.scenario === 'login' || o.scenario === 'ride') {
    result.pairs = pairs;
    result.pairsPerS = rate(pairs);
    result.pairLatencyMs = summary(pairHist);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Report.

const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const lat = (l: LatencySummary) => `p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}  mean ${f(l.mean)}`;

export function formatReport(r: BenchResult): string {
  const lines = [
    `bench ${r.scenario} -> ${r.target}: ${r.connections} connections x depth ${r.depth}, ${r.durationS.toFixed(1)} s measured after ${r.warmupS} s warmup, ${r.procs} generator thread(s), setup ${r.setupS.toFixed(1)} s`,
    `  requests   ${r.requests}   QPS ${r.qps.toFixed(1)}`,
  ];
  if (r.pairs !== undefined) lines.push(`  pairs      ${r.pairs}   pairs/s ${r.pairsPerS!.toFixed(1)}   (${r.scenario === 'login' ? 'RequestCode+Login' : 'UnlockBike+EndRide'}; pair latency ms ${lat(r.pairLatencyMs!)})`);
  lines.push(`  latency ms ${lat(r.latencyMs)}`);
  const codes = Object.entries(r.errorsByCode).sort(([, a], [, b]) => b - a);
  lines.push(`  errors     ${r.errors}${codes.length ? '   ' + codes.map(([c, n]) => `${c} ${n}`).join(', ') : ''}`);
  if (r.errorsByCode.RATE_LIMITED) lines.push(`  hint       RATE_LIMITED: ${SERVER_SETTINGS_HINT}`);
  const types = Object.entries(r.byType);
  if (types.length > 1) {
    lines.push('  by type:');
    const w = Math.max(...types.map(([n]) => n.length));
    for (const [name, t] of types) lines.push(`    ${name.padEnd(w)}  ${String(t.requests).padStart(8)} req  ${t.qps.toFixed(1).padStart(9)}/s  err ${String(t.errors).padStart(5)}  p50 ${f(t.latencyMs.p50)}  p99 ${f(t.latencyMs.p99)}  max ${f(t.latencyMs.max)}`);
  }
  lines.push(
    `  generator  CPU ${r.generatorCpu.percentOfOneCore.toFixed(0)}% of one core (user ${r.generatorCpu.userS} s, system ${r.generatorCpu.systemS} s; ${r.generatorCpu.cores} cores on this machine)` +
      (r.generatorCpu.percentOfOneCore > 85 * r.procs ? '  <- near saturation: the generator may be the bottleneck, try --procs' : ''),
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// CLI.

const HELP = `usage: bikeshare bench --scenario S [options]

  --scenario      ping | code | login | balance | recharge | ride | mixed
  --connections C connections (default 64)
  --depth D       requests in flight per connection, closed loop (default 1)
  --duration S    measured seconds (default 10)
  --warmup S      seconds run before measuring (default 1)
  --procs N       generator threads (default 1); use more if the generator's CPU nears 100%
  --json          print one JSON object instead of the report
  --timeout-ms MS per-request timeout (default 10000)
  --bike-ids LIST ride/mixed: bikes to use, one per lane ("1,2,5-40"); otherwise the
                  bench seeds its own through BIKE_MYSQL_URL (or --mysql-url)
  --mysql-url URL the server's database (default BIKE_MYSQL_URL)
  --lat, --lng    where bikes are seeded, searched and returned (default ${DEFAULT_CENTER.lat}, ${DEFAULT_CENTER.lng})
  --mix W         mixed weights, e.g. balance=40,nearby=20,records=15,recharge=10,code=10,ride=5
  --no-progress   no progress line on stderr
  --host H --port P --tls --ca FILE --insecure-skip-verify

Scenarios: ping = Ping; code = RequestCode with a fresh phone each time;
login = RequestCode then Login with debug_code (reports pairs/s); balance =
GetBalance (one user per connection); recharge = Recharge 1 cent with a fresh
idempotency key (one user per lane); ride = UnlockBike then EndRide on the
lane's own bike; mixed = the weighted mix above. Users, balances and bikes are
made before the clock starts. code, login and every scenario with users need
the server to run with BIKE_SMS_SENDER=echo BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE=0
BIKE_CODE_RESEND_SECONDS=0.`;

function parseIds(list: string): number[] {
  const ids: number[] = [];
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) for (let i = Number(range[1]); i <= Number(range[2]); i++) ids.push(i);
    else if (/^\d+$/.test(part)) ids.push(Number(part));
    else throw new BenchSetupError(`bench: --bike-ids: "${part}" is not an id or a range`);
  }
  return ids;
}

function parseMixFlag(text: string): Partial<Record<MixOp, number>> {
  const mix: Partial<Record<MixOp, number>> = Object.fromEntries(MIX_OPS.map((op) => [op, 0]));
  for (const part of text.split(',').filter(Boolean)) {
    const [op, w] = part.split('=');
    if (!MIX_OPS.includes(op as MixOp) || !(Number(w) >= 0)) throw new BenchSetupError(`bench: --mix: "${part}" (operations: ${MIX_OPS.join(', ')})`);
    mix[op as MixOp] = Number(w);
  }
  return mix;
}

export async function benchCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const { values: v } = parseArgs({
    args,
    options: {
      ...connectFlags,
      scenario: { type: 'string' },
      connections: { type: 'string', default: '64' },
      depth: { type: 'string', default: '1' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '1' },
      procs: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '10000' },
      'bike-ids': { type: 'string' },
      'mysql-url': { type: 'string' },
      lat: { type: 'string', default: String(DEFAULT_CENTER.lat) },
      lng: { type: 'string', default: String(DEFAULT_CENTER.lng) },
      mix: { type: 'string' },
      'no-progress': { type: 'boolean', default: false },
    },
  });
  if (!v.scenario) {
    console.error(HELP);
    return 2;
  }
  try {
    const result = await runBench({
      scenario: v.scenario as Scenario,
      connect: clientOptions(v),
      connections: Number(v.connections),
      depth: Number(v.depth),
      durationS: Number(v.duration),
      warmupS: Number(v.warmup),
      procs: Number(v.procs),
      timeoutMs: Number(v['timeout-ms']),
      bikeIds: v['bike-ids'] ? parseIds(v['bike-ids']) : undefined,
      mysqlUrl: v['mysql-url'] ?? process.env.BIKE_MYSQL_URL,
      center: { lat: Number(v.lat), lng: Number(v.lng) },
      mix: v.mix ? parseMixFlag(v.mix) : undefined,
      progress: v['no-progress'] ? false : 'auto',
    });
    console.log(v.json ? JSON.stringify(result) : formatReport(result));
    return 0;
  } catch (err) {
    if (err instanceof BenchSetupError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}
