// rides. active_user_id / active_bike_id are set only while a ride is active;
// their unique keys let the database refuse a second active ride.
import type { Executor } from '../stores/mysql.js';
import type { BikeStatus } from './bikes.js';

export interface RideRow {
  id: number;
  userId: number;
  bikeId: number;
  status: 'active' | 'finished';
  startedAtMs: number;
  endedAtMs: number;
  durationSeconds: number;
  fareCents: number;
}

interface RawRide {
  id: number;
  user_id: number;
  bike_id: number;
  status: 'active' | 'finished';
  started_at_ms: number;
  ended_at_ms: number | null;
  duration_seconds: number | null;
  fare_cents: number | null;
}

const toRide = (r: RawRide): RideRow => ({
  id: Number(r.id),
  userId: Number(r.user_id),
  bikeId: Number(r.bike_id),
  status: r.status,
  startedAtMs: Number(r.started_at_ms),
  endedAtMs: r.ended_at_ms === null ? 0 : Number(r.ended_at_ms),
  durationSeconds: r.duration_seconds === null ? 0 : Number(r.duration_seconds),
  fareCents: r.fare_cents === null ? 0 : Number(r.fare_cents),
});

const COLUMNS = 'id, user_id, bike_id, status, started_at_ms, ended_at_ms, duration_seconds, fare_cents';

export async function activeRideOf(db: Executor, userId: number): Promise<RideRow | null> {
  const rows = await db.rows<RawRide>(`SELECT ${COLUMNS} FROM rides WHERE active_user_id = ?`, [userId]);
  return rows.length ? toRide(rows[0]) : null;
}

/** Inserts the active ride; a duplicate key means the user (or bike) already has one. */
export async function insertActiveRide(
  tx: Executor,
  ride: { userId: number; bikeId: number; lat: number; lng: number; now: number },
): Promise<number> {
  const res = await tx.run(
    "INSERT INTO rides (user_id, bike_id, status, active_user_id, active_bike_id, started_at_ms, start_lat, start_lng) VALUES (?, ?, 'active', ?, ?, ?, ?, ?)",
    [ride.userId, ride.bikeId, ride.userId, ride.bikeId, ride.now, ride.lat, ride.lng],
  );
  return Number(res.insertId);
}

/** The user's ride and the user's balance, both rows locked until the transaction ends. */
export async function lockRideAndBalance(tx: Executor, rideId: number, userId: number): Promise<{ ride: RideRow; balanceCents: number } | null> {
  const rows = await tx.rows<RawRide & { balance_cents: number }>(
    'SELECT r.id, r.user_id, r.bike_id, r.status, r.started_at_ms, r.ended_at_ms, r.duration_seconds, r.fare_cents, u.balance_cents ' +
      'FROM rides r JOIN users u ON u.id = r.user_id WHERE r.id = ? AND r.user_id = ? FOR UPDATE',
    [rideId, userId],
  );
  return rows.length ? { ride: toRide(rows[0]), balanceCents: Number(rows[0].balance_cents) } : null;
}

/** What UnlockBike checks before it takes the bike, read in one round trip. */
export interface UnlockView {
  bike: { id: number; status: BikeStatus; lat: number; lng: number } | null;
  activeRide: { id: number; bikeId: number; startedAtMs: number } | null;
  balanceCents: number;
}

export async function unlockView(db: Executor, userId: number, bikeId: number): Promise<UnlockView> {
  const rows = await db.rows<{
    balance_cents: number;
    bike_id: number | null;
    bike_status: BikeStatus | null;
    lat: number | null;
    lng: number | null;
    ride_id: number | null;
    ride_bike_id: number | null;
    started_at_ms: number | null;
  }>(
    'SELECT u.balance_cents, b.id AS bike_id, b.status AS bike_status, b.lat, b.lng, r.id AS ride_id, r.bike_id AS ride_bike_id, r.started_at_ms ' +
      'FROM users u LEFT JOIN bikes b ON b.id = ? LEFT JOIN rides r ON r.active_user_id = u.id WHERE u.id = ?',
    [bikeId, userId],
  );
  const r = rows[0];
  if (!r) throw new Error(`no user ${userId}`);
  return {
    balanceCents: Number(r.balance_cents),
    bike: r.bike_id === null ? null : { id: Number(r.bike_id), status: r.bike_status!, lat: Number(r.lat), lng: Number(r.lng) },
    activeRide: r.ride_id === null ? null : { id: Number(r.ride_id), bikeId: Number(r.ride_bike_id), startedAtMs: Number(r.started_at_ms) },
  };
}

/**
 * Settles an active ride in one statement: the ride finished with its fare,
 * the user's balance set, and the bike made available where it was left.
 * The bike is joined only while in use (LEFT JOIN), so a ride can always end.
 * One multi-table UPDATE instead of three saves two round trips per EndRide.
 */
export async function settleRide(
  tx: Executor,
  end: { rideId: number; endedAtMs: number; lat: number; lng: number; durationSeconds: number; fareCents: number; balanceAfterCents: number },
): Promise<boolean> {
  const res = await tx.run(
    "UPDATE rides r JOIN users u ON u.id = r.user_id LEFT JOIN bikes b ON b.id = r.bike_id AND b.status = 'in_use' " +
      "SET r.status = 'finished', r.active_user_id = NULL, r.active_bike_id = NULL, r.ended_at_ms = ?, r.end_lat = ?, r.end_lng = ?, r.duration_seconds = ?, r.fare_cents = ?, " +
      "u.balance_cents = ?, u.updated_at_ms = ?, b.status = 'available', b.lat = ?, b.lng = ?, b.updated_at_ms = ? " +
      "WHERE r.id = ? AND r.status = 'active'",
    [end.endedAtMs, end.lat, end.lng, end.durationSeconds, end.fareCents, end.balanceAfterCents, end.endedAtMs, end.lat, end.lng, end.endedAtMs, end.rideId],
  );
  return res.affectedRows > 0;
}

/** Newest first, strictly below `beforeId` (0 = from the newest). */
export async function listRides(db: Executor, userId: number, beforeId: number, limit: number): Promise<RideRow[]> {
  const rows = await db.rows<RawRide>(`SELECT ${COLUMNS} FROM rides WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?`, [
    userId,
    beforeId === 0 ? Number.MAX_SAFE_INTEGER : beforeId,
    String(limit),
  ]);
  return rows.map(toRide);
}
