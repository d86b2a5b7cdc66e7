// The money check that ends every drill: the database audit (ledger and ride
// invariants) and the reconciliation of what the clients were told against
// what the ledger holds.
import { auditDatabase, openDb } from '../../test/helpers/db.js';
import { RECORD_RECHARGE, RECORD_RIDE_FARE } from '../../src/dao/records.js';
import type { LoadGenerator } from './load.js';

export interface MoneyCheck {
  ok: boolean;
  problems: string[];
  /** one line for the drills table */
  summary: string;
}

interface RecordRow {
  id: number;
  user_id: number;
  kind: number;
  amount_cents: number;
  idempotency_key: Buffer | null;
  ride_id: number | null;
}

/**
 * Every recharge a client was told about (record_id) is in account_records
 * exactly once with that amount; every fare a client was told matches its
 * ride's RIDE_FARE record; the ledger holds nothing else (as many RECHARGE
 * records as keys acknowledged, as many RIDE_FARE records as fares told); no
 * ride is left active. Then the audit.
 */
export async function moneyCheck(database: string, loads: LoadGenerator[], options: { otherUsers?: boolean } = {}): Promise<MoneyCheck> {
  const problems: string[] = [];
  const add = (p: string) => {
    if (problems.length < 40) problems.push(p);
  };
  for (const load of loads) for (const a of load.anomalies) add(`client: ${a}`);

  const db = openDb(database);
  let rows: RecordRow[];
  let activeRides: { id: number; user_id: number }[];
  let rideFares: Map<number, number>;
  try {
    rows = await db.rows<RecordRow>('SELECT id, user_id, kind, amount_cents, idempotency_key, ride_id FROM account_records', []);
    activeRides = await db.rows("SELECT id, user_id FROM rides WHERE status = 'active'", []);
    const finished = await db.rows<{ id: number; fare_cents: number }>("SELECT id, fare_cents FROM rides WHERE status = 'finished'", []);
    rideFares = new Map(finished.map((r) => [Number(r.id), Number(r.fare_cents)]));
  } finally {
    await db.close();
  }

  const loadUsers = new Set(loads.flatMap((l) => l.users.map((u) => u.userId)));
  // Drills that add traffic of their own (fuzz, slow readers) keep their users out of the reconciliation.
  const mine = options.otherUsers ? rows.filter((r) => loadUsers.has(Number(r.user_id))) : rows;
  const byKey = new Map<string, RecordRow[]>();
  const byRide = new Map<number, RecordRow[]>();
  let recharges = 0;
  let fares = 0;
  for (const r of mine) {
    const kind = Number(r.kind);
    if (kind === RECORD_RECHARGE) {
      recharges++;
      const k = `${r.user_id}/${r.idempotency_key ? Buffer.from(r.idempotency_key).toString('utf8') : ''}`;
      byKey.set(k, [...(byKey.get(k) ?? []), r]);
    } else if (kind === RECORD_RIDE_FARE) {
      fares++;
      const id = Number(r.ride_id);
      byRide.set(id, [...(byRide.get(id) ?? []), r]);
    } else add(`record ${r.id} has kind ${kind}`);
  }

  let acked = 0;
  let late = 0;
  for (const load of loads) {
    for (const e of load.recharges) {
      if (e.state === 'refused') {
        if (byKey.has(`${e.userId}/${e.key}`)) add(`key ${e.key}: refused definitively, yet in the ledger`);
        continue;
      }
      if (e.state !== 'acked') {
        add(`key ${e.key}: outcome still unknown`);
        continue;
      }
      acked++;
      if (e.settledLate) late++;
      const found = byKey.get(`${e.userId}/${e.key}`) ?? [];
      if (found.length !== 1) add(`key ${e.key}: ${found.length} RECHARGE records (want exactly 1)`);
      else {
        if (Number(found[0].id) !== e.recordId) add(`key ${e.key}: told record ${e.recordId}, ledger has ${found[0].id}`);
        if (Number(found[0].amount_cents) !== e.amount) add(`key ${e.key}: told ${e.amount} cents, ledger has ${found[0].amount_cents}`);
      }
    }
  }
  if (recharges !== acked) add(`ledger has ${recharges} RECHARGE records, clients acknowledged ${acked} keys`);

  let told = 0;
  for (const load of loads) {
    for (const f of load.fares.values()) {
      told++;
      const found = byRide.get(f.rideId) ?? [];
      if (found.length !== 1) add(`ride ${f.rideId}: ${found.length} RIDE_FARE records (want 1)`);
      else if (Number(found[0].amount_cents) !== -f.fareCents) add(`ride ${f.rideId}: told fare ${f.fareCents}, ledger has ${found[0].amount_cents}`);
      if (rideFares.get(f.rideId) !== f.fareCents) add(`ride ${f.rideId}: told fare ${f.fareCents}, rides table has ${rideFares.get(f.rideId)}`);
    }
  }
  if (fares !== told) add(`ledger has ${fares} RIDE_FARE records, clients were told ${told} fares`);
  const stuck = activeRides.filter((r) => !options.otherUsers || loadUsers.has(Number(r.user_id)));
  if (stuck.length) add(`${stuck.length} rides still active after the load ended: ${stuck.slice(0, 5).map((r) => r.id).join(', ')}`);

  const audit = await auditDatabase(database);
  for (const p of audit.problems) add(`audit: ${p}`);
  const ok = problems.length === 0;
  const summary = `${audit.problems.length ? 'audit FAILED' : 'audit ok'}; ${acked} recharges (${late} settled by final retry), ${told} fares ${ok ? 'reconciled' : `- ${problems.length} problem(s)`}`;
  return { ok, problems, summary };
}
