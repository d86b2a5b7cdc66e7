// UnlockBike, EndRide, ListRides (docs/protocol.md section 5, "Unlock", "End ride").
import type { Clock } from '../clock.js';
import { businessError } from '../errors.js';
import { ErrorCode, RideStatus, type RideEnded, type RidePage, type RideStarted } from '../protocol/messages.js';
import type { Db } from '../stores/mysql.js';
import { takeBike } from '../dao/bikes.js';
import { activeRideOf, insertActiveRide, listRides, lockRideAndBalance, settleRide, unlockView } from '../dao/rides.js';
import { findByRide, insertRecord, RECORD_RIDE_FARE } from '../dao/records.js';
import { decodeCursor, page } from './cursor.js';
import { durationSeconds, fareCents, type FareRule } from './fares.js';

export interface RideRules extends FareRule {
  minUnlockBalanceCents: number;
}

const started = (ride: { id: number; bikeId: number; startedAtMs: number }): RideStarted => ({ rideId: ride.id, bikeId: ride.bikeId, startedAtMs: ride.startedAtMs });
const isDuplicateKey = (err: unknown) => (err as { code?: string })?.code === 'ER_DUP_ENTRY';

export class RideService {
  constructor(
    private readonly db: Db,
    private readonly rules: RideRules,
    private readonly clock: Clock,
  ) {}

  /**
   * Checks in the order of the contract, then takes the bike with one
   * conditional UPDATE and inserts the ride in the same transaction. The
   * unique key on the active user refuses a second ride of a user racing
   * itself; a caller who lost a race to its own retry gets that ride back.
   */
  async unlock(userId: number, bikeId: number): Promise<RideStarted> {
    if (!Number.isSafeInteger(bikeId)) throw businessError(ErrorCode.BIKE_NOT_FOUND, 'no such bike'); // ids never reach 2^53
    const { bike, activeRide: active, balanceCents } = await unlockView(this.db, userId, bikeId);
    if (!bike) throw businessError(ErrorCode.BIKE_NOT_FOUND, 'no such bike');
    if (active) {
      if (active.bikeId === bikeId) return started(active);
      throw businessError(ErrorCode.RIDE_ALREADY_ACTIVE, 'another ride is in progress');
    }
    if (balanceCents < this.rules.minUnlockBalanceCents) {
      throw businessError(ErrorCode.INSUFFICIENT_BALANCE, `balance below ${this.rules.minUnlockBalanceCents} cents`);
    }
    const now = this.clock.now();
    try {
      const rideId = await this.db.transaction(async (tx) => {
        if (!(await takeBike(tx, bikeId, now))) throw businessError(ErrorCode.BIKE_UNAVAILABLE, 'bike in use or out of service');
        return insertActiveRide(tx, { userId, bikeId, lat: bike.lat, lng: bike.lng, now });
      });
      return { rideId, bikeId, startedAtMs: now };
    } catch (err) {
      const lostToSelf = isDuplicateKey(err) || (err as { code?: unknown }).code === ErrorCode.BIKE_UNAVAILABLE;
      if (!lostToSelf) throw err;
      const mine = await activeRideOf(this.db, userId);
      if (mine && mine.bikeId === bikeId) return started(mine);
      if (isDuplicateKey(err)) throw businessError(ErrorCode.RIDE_ALREADY_ACTIVE, 'another ride is in progress');
      throw err;
    }
  }

  /**
   * One transaction: lock the ride; a finished ride answers as it did the
   * first time; an active one is finished, charged (the balance may go
   * negative), written to the ledger, and its bike made available where it was left.
   */
  async end(userId: number, rideId: number, lat: number, lng: number): Promise<RideEnded> {
    if (!Number.isSafeInteger(rideId)) throw businessError(ErrorCode.RIDE_NOT_FOUND, 'no such ride for this user'); // ids never reach 2^53
    return this.db.transaction(async (tx) => {
      const locked = await lockRideAndBalance(tx, rideId, userId);
      if (!locked) throw businessError(ErrorCode.RIDE_NOT_FOUND, 'no such ride for this user');
      const { ride, balanceCents } = locked;
      if (ride.status === 'finished') {
        const fare = await findByRide(tx, rideId);
        return { rideId, durationSeconds: ride.durationSeconds, fareCents: ride.fareCents, balanceCents: fare ? fare.balanceAfterCents : 0 };
      }
      const now = this.clock.now();
      const duration = durationSeconds(ride.startedAtMs, now);
      const fare = fareCents(this.rules, duration);
      const after = balanceCents - fare;
      const settled = await settleRide(tx, { rideId, endedAtMs: now, lat, lng, durationSeconds: duration, fareCents: fare, balanceAfterCents: after });
      if (!settled) throw new Error(`ride ${rideId} was locked active but did not settle`); // rolls back: INTERNAL
      await insertRecord(tx, { userId, kind: RECORD_RIDE_FARE, amountCents: -fare, balanceAfterCents: after, idempotencyKey: null, rideId, now });
      return { rideId, durationSeconds: duration, fareCents: fare, balanceCents: after };
    });
  }

  async list(userId: number, cursor: string, limit: number): Promise<RidePage> {
    const before = decodeCursor('d', cursor);
    const { items, nextCursor } = page('d', await listRides(this.db, userId, before, limit + 1), limit);
    return {
      rides: items.map((r) => ({
        rideId: r.id,
        bikeId: r.bikeId,
        status: r.status === 'active' ? RideStatus.ACTIVE : RideStatus.FINISHED,
        startedAtMs: r.startedAtMs,
        endedAtMs: r.endedAtMs,
        durationSeconds: r.durationSeconds,
        fareCents: r.fareCents,
      })),
      nextCursor,
    };
  }
}
