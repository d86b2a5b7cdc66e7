// account_records: the ledger. Every change of a balance writes exactly one row here.
import type { Executor } from '../stores/mysql.js';

export const RECORD_RECHARGE = 1;
export const RECORD_RIDE_FARE = 2;

export interface RecordRow {
  id: number;
  kind: number;
  amountCents: number;
  balanceAfterCents: number;
  createdAtMs: number;
  rideId: number;
}

interface RawRecord {
  id: number;
  kind: number;
  amount_cents: number;
  balance_after_cents: number;
  created_at_ms: number;
  ride_id: number | null;
}

const toRecord = (r: RawRecord): RecordRow => ({
  id: Number(r.id),
  kind: Number(r.kind),
  amountCents: Number(r.amount_cents),
  balanceAfterCents: Number(r.balance_after_cents),
  createdAtMs: Number(r.created_at_ms),
  rideId: r.ride_id === null ? 0 : Number(r.ride_id),
});

const COLUMNS = 'id, kind, amount_cents, balance_after_cents, created_at_ms, ride_id';

export async function insertRecord(
  tx: Executor,
  row: { userId: number; kind: number; amountCents: number; balanceAfterCents: number; idempotencyKey: Buffer | null; rideId: number | null; now: number },
): Promise<number> {
  const res = await tx.run(
    'INSERT INTO account_records (user_id, kind, amount_cents, balance_after_cents, idempotency_key, ride_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [row.userId, row.kind, row.amountCents, row.balanceAfterCents, row.idempotencyKey, row.rideId, row.now],
  );
  return Number(res.insertId);
}

/** The record a recharge with this key wrote, if any (a plain read: no locks). */
export async function findByIdempotencyKey(db: Executor, userId: number, key: Buffer): Promise<RecordRow | null> {
  const rows = await db.rows<RawRecord>(`SELECT ${COLUMNS} FROM account_records WHERE user_id = ? AND idempotency_key = ?`, [userId, key]);
  return rows.length ? toRecord(rows[0]) : null;
}

export async function findByRide(db: Executor, rideId: number): Promise<RecordRow | null> {
  const rows = await db.rows<RawRecord>(`SELECT ${COLUMNS} FROM account_records WHERE ride_id = ?`, [rideId]);
  return rows.length ? toRecord(rows[0]) : null;
}

/** Newest first, strictly below `beforeId` (0 = from the newest). */
export async function listRecords(db: Executor, userId: number, beforeId: number, limit: number): Promise<RecordRow[]> {
  const rows = await db.rows<RawRecord>(
    `SELECT ${COLUMNS} FROM account_records WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
    [userId, beforeId === 0 ? Number.MAX_SAFE_INTEGER : beforeId, String(limit)],
  );
  return rows.map(toRecord);
}
