// The steady mixed load of the drills and of the hardening tests: N SDK
// clients that log in, recharge with unique idempotency keys, read their
// balance and records, look for bikes, and ride their own bikes (unlock, end).
// Every state-changing call is retried on an unknown outcome
// (SERVICE_UNAVAILABLE, INTERNAL, CLOSED, TIMEOUT) as the protocol allows:
// Recharge with the SAME key, UnlockBike of the SAME bike, EndRide of the SAME
// ride. Each client keeps a ledger of what it was told (and of what may have
// happened without it being told), which reconcile.ts then checks against the
// database.
import { randomBytes, randomInt } from 'node:crypto';
import { BikeClient, ClientError, ServerError } from '../../src/client/client.js';
import type * as m from '../../src/protocol/messages.js';
import { insertBike } from '../../src/dao/bikes.js';
import { openDb } from '../../test/helpers/db.js';
import { uniquePhone } from '../../test/helpers/users.js';
import { sleep } from './procs.js';

/** Outcomes after which a state-changing request may or may not have happened: retry as is. */
export const UNKNOWN_OUTCOME = new Set(['SERVICE_UNAVAILABLE', 'INTERNAL', 'CLOSED', 'TIMEOUT']);
/** Nothing was sent (no server to connect to), or the SDK ran out of drain retries: retry too. */
export const NOT_SENT = new Set(['CONNECT_FAILED', 'SHUTTING_DOWN']);
/** Definitive answers the load expects now and then; any other error is an anomaly. */
const EXPECTED_REFUSALS = new Set(['INSUFFICIENT_BALANCE']);

export const HOME = { lat: 31.2304, lng: 121.4737 };

export function codeOf(err: unknown): string {
  if (err instanceof ServerError || err instanceof ClientError) return err.codeName;
  return `EXCEPTION(${(err as Error)?.message ?? String(err)})`;
}

export interface LoadStats {
  sent: number;
  ok: number;
  errors: Record<string, number>;
  /** ServerNotice{SHUTTING_DOWN} pushes seen by the clients */
  notices: number;
  /** the first few error messages of each code (for the report) */
  samples: Record<string, string[]>;
  /**
   * CLOSED answers on a connection that never received a single byte: no
   * worker ever took it (it was still queued on a listening socket that
   * closed), so no request on it was read.
   */
  closedUnserved: number;
}

export interface RechargeEntry {
  userId: number;
  key: string;
  amount: number;
  /** acked: the client was told (record id known); unknown: maybe applied, never told; refused: definitively not applied */
  state: 'acked' | 'unknown' | 'refused';
  recordId: number;
  duplicate: boolean;
  /** some attempt ended with an unknown outcome (so duplicate=true is legitimate) */
  maybeApplied: boolean;
  /** how the key was settled after the load (final retry) */
  settledLate: boolean;
}

export interface FareEntry {
  userId: number;
  rideId: number;
  bikeId: number;
  fareCents: number;
  balanceCents: number;
}

export interface LoadOptions {
  port: number;
  host?: string;
  clients: number;
  database: string;
  /** bikes per client (its own, so unlocks never race other clients); default 2 */
  bikesPerClient?: number;
  /** SDK per-request timeout; default 8000 */
  timeoutMs?: number;
  /** attempts of one state-changing call during the load before its outcome is left unknown; default 6 */
  attempts?: number;
  /** pause between two operations of one client, ms; default 5..25 random */
  thinkMs?: [number, number];
}

type Result<T> = { ok: true; value: T } | { ok: false; code: string; err: unknown };

export class LoadGenerator {
  readonly stats: LoadStats = { sent: 0, ok: 0, errors: {}, notices: 0, samples: {}, closedUnserved: 0 };
  readonly recharges: RechargeEntry[] = [];
  readonly fares = new Map<number, FareEntry>();
  /** things the protocol says cannot happen (unexpected codes, inconsistent answers) */
  readonly anomalies: string[] = [];
  readonly users: LoadUser[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(readonly options: LoadOptions) {}

  get port(): number {
    return this.options.port;
  }

  /** Seeds each client's bikes, logs every client in, and starts the loops. */
  async start(): Promise<void> {
    const per = this.options.bikesPerClient ?? 2;
    const db = openDb(this.options.database);
    const bikeIds: number[] = [];
    try {
      for (let i = 0; i < this.options.clients * per; i++) bikeIds.push(await insertBike(db, HOME.lat + i * 1e-5, HOME.lng, Date.now()));
    } finally {
      await db.close();
    }
    for (let i = 0; i < this.options.clients; i++) {
      this.users.push(new LoadUser(this, i, bikeIds.slice(i * per, (i + 1) * per)));
    }
    await Promise.all(this.users.map((u) => u.login()));
    this.running = true;
    this.loops = this.users.map((u) => u.loop(() => this.running));
  }

  /** Stops issuing new operations and waits for the ones in progress (each ends after its bounded retries). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** After stop(): a final retry of everything whose outcome stayed unknown, until told (bounded by `timeoutMs`). */
  async settle(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(this.users.map((u) => u.settle(deadline)));
  }

  close(): void {
    for (const u of this.users) u.client?.close();
  }

  snapshot(): LoadStats {
    return { ...this.stats, errors: { ...this.stats.errors }, samples: { ...this.stats.samples } };
  }

  /** Counts one attempt of a request. */
  async attempt<T>(run: () => Promise<T>, what = '', client: BikeClient | null = null): Promise<Result<T>> {
    this.stats.sent++;
    try {
      const value = await run();
      this.stats.ok++;
      return { ok: true, value };
    } catch (err) {
      const code = codeOf(err);
      this.stats.errors[code] = (this.stats.errors[code] ?? 0) + 1;
      let where = '';
      if (code === 'CLOSED' && client) {
        // The SDK keeps the closed connection until the next request: how much did it ever receive?
        const bytesRead = (client.connection as unknown as { socket?: { bytesRead?: number } }).socket?.bytesRead;
        if (bytesRead === 0) this.stats.closedUnserved++;
        where = ` (connection had received ${bytesRead} bytes)`;
      }
      const samples = (this.stats.samples[code] ??= []);
      if (samples.length < 3) samples.push(`${new Date().toISOString().slice(11, 23)} ${what}: ${(err as Error)?.message ?? String(err)}${where}`);
      return { ok: false, code, err };
    }
  }

  anomaly(what: string): void {
    if (this.anomalies.length < 50) this.anomalies.push(what);
  }
}

export class LoadUser {
  client: BikeClient | null = null;
  phone = uniquePhone();
  userId = 0;
  /** the ride this user is on (or may be on: unlock outcome unknown) */
  ride: { bikeId: number; rideId: number } | null = null;
  private nextBike = 0;
  private keySeq = 0;
  private readonly keyPrefix = randomBytes(6).toString('hex');

  constructor(
    private readonly load: LoadGenerator,
    readonly index: number,
    readonly bikes: number[],
  ) {}

  private get opts(): LoadOptions {
    return this.load.options;
  }

  /** Connects (retrying while the server is not there) and logs in with a fresh code. */
  async login(deadline = Date.now() + 60_000): Promise<void> {
    while (!this.client) {
      try {
        this.client = await BikeClient.connect({ host: this.opts.host ?? '127.0.0.1', port: this.opts.port, timeoutMs: this.opts.timeoutMs ?? 8000 });
        this.client.on('notice', () => this.load.stats.notices++);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`client ${this.index}: cannot connect: ${codeOf(err)}`);
        await sleep(200);
      }
    }
    for (;;) {
      const c = this.client;
      const sent = await this.load.attempt(() => c.requestCode(this.phone), 'RequestCode');
      if (sent.ok) {
        // The same code may be retried after an unknown outcome (the server gives it back).
        for (let i = 0; i < 5; i++) {
          const r = await this.load.attempt(() => c.login(this.phone, sent.value.debugCode), 'Login');
          if (r.ok) {
            this.userId = r.value.userId;
            return;
          }
          if (!UNKNOWN_OUTCOME.has(r.code) && !NOT_SENT.has(r.code)) break; // CODE_INVALID: ask for a new code
          await sleep(200);
        }
      }
      if (Date.now() > deadline) throw new Error(`client ${this.index}: login failed: ${sent.ok ? 'login' : sent.code}`);
      await sleep(250);
    }
  }

  async loop(running: () => boolean): Promise<void> {
    const [lo, hi] = this.opts.thinkMs ?? [5, 25];
    while (running()) {
      const pick = randomInt(100);
      if (pick < 35) await this.recharge();
      else if (pick < 55) await this.read(() => this.client!.balance(), 'GetBalance');
      else if (pick < 65) await this.read(() => this.client!.accountRecords('', randomInt(1, 101)), 'ListAccountRecords');
      else if (pick < 75) await this.read(() => this.client!.nearbyBikes({ ...HOME, radiusM: 2000, limit: 20 }), 'FindNearbyBikes');
      else if (pick < 80) await this.read(() => this.client!.ping(randomInt(1, 1_000_000)), 'Ping');
      else await this.rideStep();
      await sleep(randomInt(lo, hi + 1));
    }
  }

  /** A read: one attempt, counted; only unexpected codes matter. */
  private async read(run: () => Promise<unknown>, what: string): Promise<void> {
    const r = await this.load.attempt(run, `user ${this.userId} ${what}`, this.client);
    if (!r.ok) this.checkCode(r.code, 'read');
  }

  private checkCode(code: string, what: string): void {
    if (UNKNOWN_OUTCOME.has(code) || NOT_SENT.has(code) || EXPECTED_REFUSALS.has(code)) return;
    this.load.anomaly(`user ${this.userId} ${what}: unexpected ${code}`);
  }

  /** Retries a state-changing call as is; returns the answer, or the last error code. */
  private async retrying<T>(what: string, run: () => Promise<T>, attempts: number, onUnknown: () => void): Promise<Result<T>> {
    let last: Result<T> = { ok: false, code: 'NOT_TRIED', err: null };
    for (let i = 0; i < attempts; i++) {
      last = await this.load.attempt(run, `user ${this.userId} ${what}${i ? ` (retry ${i})` : ''}`, this.client);
      if (last.ok) return last;
      if (UNKNOWN_OUTCOME.has(last.code)) onUnknown();
      else if (!NOT_SENT.has(last.code)) return last; // a definitive answer
      await sleep(Math.min(1000, 100 * 2 ** i));
    }
    return last;
  }

  async recharge(): Promise<void> {
    const entry: RechargeEntry = {
      userId: this.userId,
      key: `${this.keyPrefix}-${this.index}-${++this.keySeq}`,
      amount: randomInt(100, 5001),
      state: 'unknown',
      recordId: 0,
      duplicate: false,
      maybeApplied: false,
      settledLate: false,
    };
    this.load.recharges.push(entry);
    await this.rechargeAttempts(entry, this.opts.attempts ?? 6);
  }

  private async rechargeAttempts(entry: RechargeEntry, attempts: number): Promise<Result<m.RechargeReply>> {
    const r = await this.retrying(`Recharge ${entry.key}`, () => this.client!.recharge(entry.amount, entry.key), attempts, () => (entry.maybeApplied = true));
    if (r.ok) {
      entry.state = 'acked';
      entry.recordId = r.value.recordId;
      entry.duplicate = r.value.duplicate;
      if (r.value.duplicate && !entry.maybeApplied) this.load.anomaly(`key ${entry.key}: duplicate=true on the first answer although no attempt could have applied it`);
    } else if (!UNKNOWN_OUTCOME.has(r.code) && !NOT_SENT.has(r.code)) {
      entry.state = entry.maybeApplied ? 'unknown' : 'refused';
      this.checkCode(r.code, 'recharge');
    }
    return r;
  }

  /** Unlocks one of its own bikes if it has no ride, else ends the ride. */
  async rideStep(attempts = this.opts.attempts ?? 6): Promise<void> {
    if (!this.ride || this.ride.rideId === 0) {
      // Unknown unlock outcome earlier: retry the SAME bike (the server hands back that ride).
      const bikeId = this.ride?.bikeId ?? this.bikes[this.nextBike++ % this.bikes.length];
      this.ride = { bikeId, rideId: 0 };
      const r = await this.retrying(`UnlockBike ${bikeId}`, () => this.client!.unlock(bikeId), attempts, () => undefined);
      if (r.ok) {
        if (r.value.bikeId !== bikeId) this.load.anomaly(`unlock of bike ${bikeId} answered with bike ${r.value.bikeId}`);
        this.ride = { bikeId, rideId: r.value.rideId };
      } else if (!UNKNOWN_OUTCOME.has(r.code) && !NOT_SENT.has(r.code)) {
        this.ride = null; // definitive: no ride (e.g. INSUFFICIENT_BALANCE)
        this.checkCode(r.code, `unlock of bike ${bikeId}`);
      }
      return;
    }
    const ride = this.ride;
    const r = await this.retrying(`EndRide ${ride.rideId}`, () => this.client!.endRide(ride.rideId, HOME.lat, HOME.lng), attempts, () => undefined);
    if (r.ok) {
      this.told(ride, r.value);
      this.ride = null;
    } else if (!UNKNOWN_OUTCOME.has(r.code) && !NOT_SENT.has(r.code)) {
      this.checkCode(r.code, `end of ride ${ride.rideId}`);
      this.ride = null;
    }
  }

  private told(ride: { bikeId: number; rideId: number }, ended: m.RideEnded): void {
    if (ended.rideId !== ride.rideId) this.load.anomaly(`EndRide ${ride.rideId} answered for ride ${ended.rideId}`);
    const earlier = this.load.fares.get(ride.rideId);
    if (earlier && (earlier.fareCents !== ended.fareCents || earlier.balanceCents !== ended.balanceCents)) {
      this.load.anomaly(`ride ${ride.rideId}: a repeated EndRide changed the answer`);
    }
    this.load.fares.set(ride.rideId, { userId: this.userId, rideId: ride.rideId, bikeId: ride.bikeId, fareCents: ended.fareCents, balanceCents: ended.balanceCents });
  }

  /**
   * The final retry: every key whose outcome stayed unknown is sent again
   * with the same key (the database says beforehand whether it had been
   * applied, and the answer must agree: duplicate=true exactly then), the
   * unknown unlock is retried and every ride is ended.
   */
  async settle(deadline: number): Promise<void> {
    const db = openDb(this.load.options.database);
    try {
      for (const entry of this.load.recharges) {
        if (entry.userId !== this.userId || entry.state !== 'unknown') continue;
        const before = await db.rows<{ id: number }>('SELECT id FROM account_records WHERE user_id = ? AND idempotency_key = ?', [this.userId, Buffer.from(entry.key)]);
        let last: Result<m.RechargeReply> | null = null;
        while (!last?.ok && Date.now() < deadline) {
          entry.maybeApplied = true;
          last = await this.rechargeAttempts(entry, 3);
          if (!last.ok && !UNKNOWN_OUTCOME.has(last.code) && !NOT_SENT.has(last.code)) break;
        }
        if (!last?.ok) {
          this.load.anomaly(`key ${entry.key}: still unsettled after the final retry (${last?.code ?? 'no time left'})`);
          continue;
        }
        entry.settledLate = true;
        const applied = before.length === 1;
        if (entry.duplicate !== applied) this.load.anomaly(`key ${entry.key}: final retry said duplicate=${entry.duplicate} but it had ${applied ? '' : 'not '}been applied`);
        if (applied && Number(before[0].id) !== entry.recordId) this.load.anomaly(`key ${entry.key}: final retry answered record ${entry.recordId}, database has ${before[0].id}`);
      }
      while (this.ride && Date.now() < deadline) await this.rideStep(3);
      if (this.ride) this.load.anomaly(`user ${this.userId}: ride on bike ${this.ride.bikeId} could not be ended`);
    } finally {
      await db.close();
    }
  }
}
