// bikes. A bike is taken with one conditional UPDATE whose affected-row count
// decides the winner; nothing reads its status first.
import type { Executor } from '../stores/mysql.js';

export type BikeStatus = 'available' | 'in_use' | 'out_of_service';

export interface BikeRow {
  id: number;
  status: BikeStatus;
  lat: number;
  lng: number;
}

interface RawBike {
  id: number;
  status: BikeStatus;
  lat: number;
  lng: number;
}
const toBike = (r: RawBike): BikeRow => ({ id: Number(r.id), status: r.status, lat: Number(r.lat), lng: Number(r.lng) });

/** available -> in_use; true for the one caller that won the bike. */
export async function takeBike(tx: Executor, bikeId: number, now: number): Promise<boolean> {
  const res = await tx.run("UPDATE bikes SET status = 'in_use', updated_at_ms = ? WHERE id = ? AND status = 'available'", [now, bikeId]);
  return res.affectedRows === 1;
}

/** Operator action; never touches a bike in use (its ride must end first). */
export async function setBikeStatus(db: Executor, bikeId: number, status: BikeStatus, now: number): Promise<boolean> {
  const res = await db.run("UPDATE bikes SET status = ?, updated_at_ms = ? WHERE id = ? AND status <> 'in_use'", [status, now, bikeId]);
  return res.affectedRows === 1;
}

export async function insertBike(db: Executor, lat: number, lng: number, now: number): Promise<number> {
  const res = await db.run("INSERT INTO bikes (status, lat, lng, created_at_ms, updated_at_ms) VALUES ('available', ?, ?, ?, ?)", [lat, lng, now, now]);
  return Number(res.insertId);
}

/** A box on the map; the longitude range may come in two parts where it crosses 180 degrees. */
export interface Box {
  minLat: number;
  maxLat: number;
  lngRanges: [number, number][];
}

/** Available bikes inside the box (the caller filters by exact distance). */
export async function availableInBox(db: Executor, box: Box): Promise<BikeRow[]> {
  const [a, b = [1, -1]] = box.lngRanges; // an empty second range when there is only one
  const rows = await db.rows<RawBike>(
    "SELECT id, status, lat, lng FROM bikes WHERE status = 'available' AND lat BETWEEN ? AND ? AND (lng BETWEEN ? AND ? OR lng BETWEEN ? AND ?)",
    [box.minLat, box.maxLat, a[0], a[1], b[0], b[1]],
  );
  return rows.map(toBike);
}
