// The mysql2 pool of one worker, and the one way SQL is run: prepared
// statements (`execute`), with connectivity failures turned into
// SERVICE_UNAVAILABLE at this boundary so no caller has to know mysql2 codes.
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
  poolSize: number;
  timeoutMs: number;
  /** Called for each unreachable-store failure (metrics). */
  onUnavailable?: (err: unknown) => void;
}

export function createPool(options: MysqlOptions): Pool {
  return mysql.createPool({
    uri: options.url,
    connectionLimit: options.poolSize,
    maxIdle: options.poolSize,
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

/** The pool as an Executor, plus the transaction helper. */
export class Db extends StatementRunner {
  constructor(
    readonly pool: Pool,
    options: MysqlOptions,
  ) {
    super(pool, options);
  }

  /**
   * Runs `work` in one transaction: BEGIN, COMMIT when it returns, ROLLBACK
   * when it throws (the error goes on to the caller), and the connection goes
   * back to the pool in every case: the RAII guard of a C++ server.
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
      conn = await new Promise<PoolConnection>((resolve, reject) => this.pool.getConnection((err, c) => (err ? reject(err) : resolve(c))));
    } catch (err) {
      throw this.translate(err);
    }
    let broken = false;
    try {
      await query(conn, 'START TRANSACTION');
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

  /** In use / idle / waiting, for the pool gauges (mysql2 keeps these on the pool). */
  poolStats(): { inUse: number; idle: number; waiting: number } {
    const p = this.pool as unknown as { _allConnections?: { length: number }; _freeConnections?: { length: number }; _connectionQueue?: { length: number } };
    const all = p._allConnections?.length ?? 0;
    const idle = p._freeConnections?.length ?? 0;
    return { inUse: all - idle, idle, waiting: p._connectionQueue?.length ?? 0 };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.pool.end(() => resolve()));
  }
}
