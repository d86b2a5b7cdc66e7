// What every drill shares: a real cluster on a database of its own, the
// steady load, the result record, and the money check at the end.
import { startServer, testDatabaseName, type StartOptions, type TestServer } from '../../test/helpers/server.js';
import { dropDatabase } from '../../test/helpers/db.js';
import { BikeClient } from '../../src/client/client.js';
import { LoadGenerator, codeOf, type LoadOptions, type LoadStats } from './load.js';
import { moneyCheck } from './reconcile.js';
import { sleep } from './procs.js';

export interface DrillOptions {
  /** the CI-sized variant */
  short: boolean;
  log?: (line: string) => void;
}

export interface DrillResult {
  name: string;
  load: LoadStats;
  pass: boolean;
  /** why it failed (empty when it passed) */
  reasons: string[];
  /** audit + reconciliation, one line */
  money: string;
  /** what was measured (for the report) */
  notes: string[];
}

export interface Drill {
  name: string;
  proves: string;
  run(options: DrillOptions): Promise<DrillResult>;
}

export class DrillContext {
  server!: TestServer;
  load!: LoadGenerator;
  readonly database = testDatabaseName();
  readonly reasons: string[] = [];
  readonly notes: string[] = [];
  /** other databases' servers started by the drill, stopped at the end */
  private readonly servers: TestServer[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  constructor(
    readonly name: string,
    readonly options: DrillOptions,
  ) {}

  get short(): boolean {
    return this.options.short;
  }

  log(line: string): void {
    this.options.log?.(`[${this.name}] ${line}`);
  }

  fail(reason: string): void {
    this.reasons.push(reason);
    this.log(`FAIL: ${reason}`);
  }

  check(ok: boolean, reason: string): boolean {
    if (!ok) this.fail(reason);
    return ok;
  }

  note(line: string): void {
    this.notes.push(line);
    this.log(line);
  }

  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /** Starts (or restarts, on the same database) the cluster. */
  async start(options: StartOptions = {}): Promise<TestServer> {
    const server = await startServer({ workers: 2, ...options, database: this.database, env: { BIKE_LOG_LEVEL: 'warn', ...options.env } });
    this.servers.push(server);
    this.server = server;
    return server;
  }

  async startLoad(options: Partial<LoadOptions> = {}): Promise<LoadGenerator> {
    this.load = new LoadGenerator({ port: this.server.port, clients: this.short ? 4 : 8, database: this.database, ...options });
    await this.load.start();
    return this.load;
  }

  /** Load keeps succeeding: at least `min` answers OK within `withinMs` from now. */
  async progress(min: number, withinMs: number, what: string): Promise<boolean> {
    const start = this.load.stats.ok;
    const deadline = Date.now() + withinMs;
    while (this.load.stats.ok - start < min && Date.now() < deadline) await sleep(100);
    return this.check(this.load.stats.ok - start >= min, `${what}: only ${this.load.stats.ok - start} requests succeeded in ${withinMs} ms (want ${min})`);
  }

  /**
   * How long until an authenticated request succeeds again (GetBalance with
   * the token of the first load user, on a connection of its own); -1 if not within `timeoutMs`.
   */
  async recovery(timeoutMs: number): Promise<number> {
    const started = Date.now();
    const token = this.load.users[0].client!.token;
    let client: BikeClient | null = null;
    try {
      while (Date.now() - started < timeoutMs) {
        try {
          client ??= await BikeClient.connect({ host: '127.0.0.1', port: this.server.port, token, timeoutMs: 5000 });
          await client.balance();
          return Date.now() - started;
        } catch (err) {
          if (codeOf(err) === 'CONNECT_FAILED') client = null;
          await sleep(100);
        }
      }
      return -1;
    } finally {
      client?.close();
    }
  }

  /** Stops the load, settles what stayed unknown, checks the money, stops everything. */
  async finish(moneyOptions: { otherUsers?: boolean } = {}): Promise<DrillResult> {
    let money = 'not checked';
    try {
      if (this.load) {
        await this.load.stop();
        await this.load.settle();
        const check = await moneyCheck(this.database, [this.load], moneyOptions);
        money = check.summary;
        for (const p of check.problems) this.fail(`money: ${p}`);
      }
    } catch (err) {
      this.fail(`money check could not run: ${(err as Error).message}`);
    }
    if (this.load) {
      const internal = this.load.stats.errors.INTERNAL ?? 0;
      if (internal) this.fail(`${internal} INTERNAL answers (a failure the server did not classify): ${this.load.stats.samples.INTERNAL?.join(' | ')}`);
    }
    await this.teardown();
    if (this.reasons.length) {
      for (const [code, samples] of Object.entries(this.load?.stats.samples ?? {})) this.notes.push(`client ${code}: ${samples.join(' | ')}`);
      for (const s of this.servers) for (const line of s.output.filter((l) => /"level":(50|60)/.test(l)).slice(0, 5)) this.notes.push(`server log: ${line.slice(0, 600)}`);
    }
    return {
      name: this.name,
      load: this.load ? this.load.snapshot() : { sent: 0, ok: 0, errors: {}, notices: 0, samples: {}, closedUnserved: 0 },
      pass: this.reasons.length === 0,
      reasons: this.reasons,
      money,
      notes: this.notes,
    };
  }

  async teardown(): Promise<void> {
    this.load?.close();
    for (const fn of this.cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
    for (const s of this.servers) {
      if (s.process.exitCode === null && s.process.signalCode === null) {
        const code = await Promise.race([s.stop('SIGTERM'), sleep(20_000).then(() => 'timeout' as const)]);
        if (code === 'timeout') s.process.kill('SIGKILL');
      }
    }
    if (this.reasons.length === 0) await dropDatabase(this.database).catch(() => undefined);
    else this.log(`database ${this.database} kept for inspection`);
  }
}

/** Runs a drill body inside a context; whatever it throws becomes a failure reason. */
export async function drill(name: string, options: DrillOptions, body: (ctx: DrillContext) => Promise<void>, moneyOptions: { otherUsers?: boolean } = {}): Promise<DrillResult> {
  const ctx = new DrillContext(name, options);
  try {
    await body(ctx);
  } catch (err) {
    ctx.fail(`drill aborted: ${(err as Error).stack ?? String(err)}`);
  }
  return ctx.finish(moneyOptions);
}
