// A short-lived pool for the operator commands (bikes, audit).
import type { Config } from '../config/config.js';
import { Db } from '../stores/mysql.js';
import { migrate } from '../stores/migrate.js';

export async function withDb<T>(config: Config, work: (db: Db) => Promise<T>): Promise<T> {
  await migrate(config.mysqlUrl, config.storeTimeoutMs);
  const options = { url: config.mysqlUrl, poolSize: 4, timeoutMs: config.storeTimeoutMs };
  const db = new Db(options);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}
