// Read-only consistency checks over the whole database (bikeshare audit, tests, drills).
import type { Executor } from '../stores/mysql.js';

export interface AuditReport {
  users: number;
  records: number;
  activeRides: number;
  finishedRides: number;
  /** users whose balance differs from the sum of their records */
  ledgerMismatches: { userId: number; balanceCents: number; recordSumCents: number }[];
  inUseBikesWithoutRide: number[];
  activeRidesWithoutInUseBike: number[];
  finishedRidesWithoutFare: number[];
  ridesWithBadActiveColumns: number[];
}

const ids = (rows: { id: number }[]) => rows.map((r) => Number(r.id));

export async function audit(db: Executor): Promise<AuditReport> {
  const [counts] = await db.rows<{ users: number; records: number; active: number; finished: number }>(
    "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM account_records) AS records, (SELECT COUNT(*) FROM rides WHERE status = 'active') AS active, (SELECT COUNT(*) FROM rides WHERE status = 'finished') AS finished",
    [],
  );
  const ledger = await db.rows<{ user_id: number; balance_cents: number; total: number }>(
    'SELECT u.id AS user_id, u.balance_cents, COALESCE(SUM(r.amount_cents), 0) AS total FROM users u LEFT JOIN account_records r ON r.user_id = u.id GROUP BY u.id, u.balance_cents HAVING u.balance_cents <> total',
    [],
  );
  return {
    users: Number(counts.users),
    records: Number(counts.records),
    activeRides: Number(counts.active),
    finishedRides: Number(counts.finished),
    ledgerMismatches: ledger.map((r) => ({ userId: Number(r.user_id), balanceCents: Number(r.balance_cents), recordSumCents: Number(r.total) })),
    inUseBikesWithoutRide: ids(await db.rows("SELECT b.id FROM bikes b LEFT JOIN rides r ON r.active_bike_id = b.id WHERE b.status = 'in_use' AND r.id IS NULL", [])),
    activeRidesWithoutInUseBike: ids(await db.rows("SELECT r.id FROM rides r JOIN bikes b ON b.id = r.bike_id WHERE r.status = 'active' AND b.status <> 'in_use'", [])),
    finishedRidesWithoutFare: ids(await db.rows("SELECT r.id FROM rides r LEFT JOIN account_records a ON a.ride_id = r.id WHERE r.status = 'finished' AND a.id IS NULL", [])),
    ridesWithBadActiveColumns: ids(
      await db.rows(
        "SELECT id FROM rides WHERE (status = 'active' AND (active_user_id IS NULL OR active_bike_id IS NULL OR active_user_id <> user_id OR active_bike_id <> bike_id)) OR (status = 'finished' AND (active_user_id IS NOT NULL OR active_bike_id IS NOT NULL))",
        [],
      ),
    ),
  };
}

export function auditProblems(report: AuditReport): string[] {
  const problems: string[] = [];
  const add = (what: string, list: unknown[]) => {
    if (list.length) problems.push(`${what}: ${list.length} (${JSON.stringify(list.slice(0, 5))}${list.length > 5 ? ' ...' : ''})`);
  };
  add('ledger mismatches (balance <> sum of records)', report.ledgerMismatches);
  add('in-use bikes without an active ride', report.inUseBikesWithoutRide);
  add('active rides whose bike is not in use', report.activeRidesWithoutInUseBike);
  add('finished rides without a fare record', report.finishedRidesWithoutFare);
  add('rides whose active columns disagree with their status', report.ridesWithBadActiveColumns);
  return problems;
}
