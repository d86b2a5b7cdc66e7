// `bikeshare audit`: the ledger invariant and the ride/bike invariants.
import type { Config } from '../config/config.js';
import { audit, auditProblems } from '../dao/audit.js';
import { withDb } from './db.js';

export async function auditCommand(config: Config): Promise<number> {
  const report = await withDb(config, (db) => audit(db));
  const problems = auditProblems(report);
  console.log(
    `audit: ${report.users} users, ${report.records} ledger records, ${report.activeRides} active and ${report.finishedRides} finished rides: ` +
      (problems.length ? `${problems.length} violation(s)` : 'all invariants hold'),
  );
  for (const p of problems) console.log(`  VIOLATION ${p}`);
  return problems.length ? 1 : 0;
}
