// Versioned schema migrations (migrations/NNN_name.sql), applied by the
// primary before it forks workers. Creates the database if missing; a named
// lock serializes replicas that start at once; applied versions are recorded,
// so running again changes nothing.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';

const DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const LOCK = 'bikeshare_migrate';

export interface MigrationResult {
  database: string;
  applied: string[];
}

export function databaseOf(mysqlUrl: string): string {
  const name = decodeURIComponent(new URL(mysqlUrl).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_$]{1,64}$/.test(name)) throw new Error(`mysqlUrl: database name "${name}" must be 1..64 of [A-Za-z0-9_$]`);
  return name;
}

/** The server URL without the database (to create it). */
function serverUrl(mysqlUrl: string): string {
  const u = new URL(mysqlUrl);
  u.pathname = '/';
  return u.toString();
}

export async function migrate(mysqlUrl: string, timeoutMs = 10000): Promise<MigrationResult> {
  const database = databaseOf(mysqlUrl);
  const conn = await mysql.createConnection({ uri: serverUrl(mysqlUrl), connectTimeout: timeoutMs, multipleStatements: true });
  try {
    // Identifier checked above against a strict pattern; DDL cannot take placeholders.
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await conn.changeUser({ database });
    const [lock] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [LOCK, 60]);
    if (lock[0].got !== 1) throw new Error('could not take the migration lock within 60 s');
    try {
      await conn.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(128) NOT NULL PRIMARY KEY, applied_at_ms BIGINT NOT NULL) ENGINE=InnoDB',
      );
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => String(r.version)));
      const applied: string[] = [];
      for (const file of readdirSync(DIR).filter((f) => /^\d+_.+\.sql$/.test(f)).sort()) {
        const version = file.replace(/\.sql$/, '');
        if (done.has(version)) continue;
        await conn.query(readFileSync(DIR + file, 'utf8'));
        await conn.query('INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)', [version, Date.now()]);
        applied.push(version);
      }
      return { database, applied };
    } finally {
      await conn.query('SELECT RELEASE_LOCK(?)', [LOCK]);
    }
  } finally {
    await conn.end();
  }
}
