// Direct database access for tests: the invariants, counts, and cleanup.
import mysql from 'mysql2/promise';
import { Db } from '../../src/stores/mysql.js';
import { audit, auditProblems, type AuditReport } from '../../src/dao/audit.js';
import { MYSQL_BASE, mysqlUrlFor } from './server.js';

export function openDb(database: string): Db {
  const options = { url: mysqlUrlFor(database), poolSize: 4, timeoutMs: 5000 };
  return new Db(options);
}

export async function dropDatabase(database: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: MYSQL_BASE });
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await conn.end();
  }
}

/** Runs the audit and returns its problems (empty when every invariant holds). */
export async function auditDatabase(database: string): Promise<{ report: AuditReport; problems: string[] }> {
  const db = openDb(database);
  try {
    const report = await audit(db);
    return { report, problems: auditProblems(report) };
  } finally {
    await db.close();
  }
}

/** The `n` column of the first row: `SELECT COUNT(*) AS n ...`. */
export async function count(db: Db, sql: string, params: (string | number)[]): Promise<number> {
  const [row] = await db.rows<{ n: number }>(sql, params);
  return Number(row.n);
}
