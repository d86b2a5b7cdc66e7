// The mysql2 pools of one worker, and the one way SQL is run: prepared
// statements (`execute`), with connectivity failures turned into
// SERVICE_UNAVAILABLE at this boundary so no caller has to know mysql2 codes.
// Two pools: one for single statements (autocommit), one whose connections
// run with autocommit off, so that a transaction starts with its first
// statement instead of a BEGIN round trip (as JDBC's setAutoCommit(false)).
// The callback API is used underneath: mysql2's promise wrapper captures a
// stack trace per call, which showed up in the CPU profile of the hot path.
import mysql from 'mysql2';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2';
import { ServiceUnavailableError } from '../errors.js';
import { isMysqlUnreachable } from './unavailable.js';

export type { ResultSetHeader, RowDataPacket };
export type Param = string | number | null | Buffer;

/** Something that runs one prepared statement: the pool, or one transaction's connection. */
export interface Executor {
  rows<T>(sql: string, params: Param[]): Promise<T[]>;
  run(sql: string, params: Param[]): Promise<ResultSetHeader>;
}

export interface MysqlOptions {
  url: string;
  /** connections for single statements (autocommit) */
  poolSize: number;
  /** connections for transactions (autocommit off); default poolSize */
  txPoolSize?: number;
  timeoutMs: number;
  /** Called for each unreachable-store failure (metrics). */
  onUnavailable?: (err: unknown) => void;
}

function createPool(options: MysqlOptions, size: number): Pool {
  return mysql.createPool({
    uri: options.url,
    connectionLimit: size,
    maxIdle: size,
    connectTimeout: options.timeoutMs,
    enableKeepAlive: true,
    supportBigNumbers: true,
    decimalNumbers: true,
    timezone: 'Z',
    charset: 'utf8mb4_bin',
  });
}

type Target = Pool | PoolConnection;

const DEADLOCK_RETRIES = 3;

function execute(target: Target, sql: string, params: Param[], timeout: number): Promise<RowDataPacket[] | ResultSetHeader> {
  return new Promise((resolve, reject) => {
    target.execute<RowDataPacket[] | ResultSetHeader>({ sql, timeout }, params, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function query(target: Target, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => target.query(sql, (err, result) => (err ? reject(err) : resolve(result))));
}

class StatementRunner implements Executor {
  constructor(
    protected readonly target: Target,
    protected readonly options: MysqlOptions,
  ) {}

  async rows<T>(sql: string, params: Param[]): Promise<T[]> {
    return (await this.exec(sql, params)) as unknown as T[];
  }

  async run(sql: string, params: Param[]): Promise<ResultSetHeader> {
    return (await this.exec(sql, params)) as ResultSetHeader;
  }

  private async exec(sql: string, params: Param[]): Promise<RowDataPacket[] | ResultSetHeader> {
    try {
      return await execute(this.target, sql, params, this.options.timeoutMs);
    } catch (err) {
      throw this.translate(err);
    }
  }

  protected translate(err: unknown): unknown {
    if (!isMysqlUnreachable(err)) return err;
    this.options.onUnavailable?.(err);
    return new ServiceUnavailableError('database unreachable', { cause: err });
  }
}

/** The statement pool as an Executor, plus the transaction helper over the transaction pool. */
export class Db extends StatementRunner {
  private readonly pool: Pool;
  private readonly txPool: Pool;

  constructor(options: MysqlOptions) {
    const pool = createPool(options, options.poolSize);
    super(pool, options);
    this.pool = pool;
    this.txPool = createPool(options, options.txPoolSize ?? options.poolSize);
    // Runs before the pool hands the new connection out (commands on one connection run in order).
    this.txPool.on('connection', (conn) =>
      conn.query('SET autocommit = 0', (err) => {
        if (err) conn.destroy(); // never hand out a connection that would commit each statement
      }),
    );
  }

  /**
   * Runs `work` in one transaction: it starts with the first statement (the
   * connection has autocommit off), COMMIT when `work` returns, ROLLBACK when
   * it throws (the error goes on to the caller), and the connection goes back
   * to the pool in every case, never with a transaction open: the RAII guard
   * of a C++ server.
   */
  async transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    // InnoDB may pick this transaction as a deadlock victim; it was rolled
    // back whole, so running it again is safe and is what the caller wants.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(work);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ER_LOCK_DEADLOCK' || attempt >= DEADLOCK_RETRIES) throw err;
      }
    }
  }

  private async once<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    let conn: PoolConnection;
    try {
      conn = await new Promise<PoolConnection>((resolve, reject) => this.txPool.getConnection((err, c) => (err ? reject(err) : resolve(c))));
    } catch (err) {
      throw this.translate(err);
    }
    let broken = false;
    try {
      const result = await work(new StatementRunner(conn, this.options));
      await query(conn, 'COMMIT');
      return result;
    } catch (err) {
      await query(conn, 'ROLLBACK').catch(() => {
        broken = true; // a connection in an unknown state never goes back to the pool
        conn.destroy();
      });
      throw this.translate(err);
    } finally {
      if (!broken) conn.release();
    }
  }

  async ping(): Promise<boolean> {
    try {
      await execute(this.pool, 'SELECT 1', [], this.options.timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** In use / idle / waiting over both pools, for the pool gauges (mysql2 keeps these on the pool). */
  poolStats(): { inUse: number; idle: number; waiting: number } {
    const stats = { inUse: 0, idle: 0, waiting: 0 };
    for (const pool of [this.pool, this.txPool]) {
      const p = pool as unknown as { _allConnections?: { length: number }; _freeConnections?: { length: number }; _connectionQueue?: { length: number } };
      const all = p._allConnections?.length ?? 0;
      const idle = p._freeConnections?.length ?? 0;
      stats.inUse += all - idle;
      stats.idle += idle;
      stats.waiting += p._connectionQueue?.length ?? 0;
    }
    return stats;
  }

  async close(): Promise<void> {
    await Promise.all([this.pool, this.txPool].map((pool) => new Promise<void>((resolve) => pool.end(() => resolve()))));
  }
}
