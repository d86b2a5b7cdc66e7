// `npm run bench`: the benchmark harness (docs/benchmark.md).
//
// (a) Measures the ceilings of this box at the same concurrency: Redis GET
//     (redis-benchmark), a raw mysql2 point select and a raw 3-statement
//     transaction (64 concurrent loops each), and a bare framed echo server
//     (bench/echo-server.ts) driven by the same load generator as ping.
// (b) Starts the real server on free ports with a database of its own
//     (bikeshare_bench, dropped and recreated first) and runs each scenario
//     at 64 connections x depth 1 (ping and code also at depth 16).
// (c) Prints scenario, QPS, p99, ceiling, ratio, target and met/missed, and
//     writes the same to bench/results/latest.json.
// --levers also compares log level info/warn, innodb_flush_log_at_trx_commit
// 1/2 (restored afterwards) and 1/2 workers on the code and recharge scenarios.
//
//   npm run bench -- [--duration 10] [--warmup 2] [--only ping,code,...] [--workers N]
//                    [--procs N] [--repeat N] [--levers]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, cpus } from 'node:os';
import { createHistogram, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import mysql from 'mysql2';
import { runBench, BenchSetupError, SCENARIOS, type BenchResult, type Scenario } from '../src/cli/bench.js';
import { freePort } from '../test/helpers/server.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MYSQL_BASE = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const BENCH_DB = 'bikeshare_bench';
const CEILING_DB = 'bikeshare_bench_ceiling';
const CONNECTIONS = 64;

const { values: v } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    only: { type: 'string' },
    workers: { type: 'string', default: String(availableParallelism()) },
    procs: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '1' },
    levers: { type: 'boolean', default: false },
    'from-src': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (v.help) {
  console.log('usage: npm run bench -- [--duration S] [--warmup S] [--only ping,code,login,balance,recharge,ride,mixed] [--workers N] [--procs N] [--repeat N] [--levers] [--from-src]');
  process.exit(0);
}
const durationS = Number(v.duration);
const warmupS = Number(v.warmup);
const workers = Number(v.workers);
const procs = Number(v.procs);
const repeat = Number(v.repeat);
const only = v.only ? v.only.split(',').map((s) => s.trim()).filter(Boolean) : [...SCENARIOS];
for (const s of only) if (!SCENARIOS.includes(s as Scenario)) throw new Error(`--only: unknown scenario "${s}" (${SCENARIOS.join(', ')})`);
if (!(durationS > 0) || !(warmupS >= 0) || !(workers >= 1) || !(procs >= 1) || !Number.isInteger(repeat) || repeat < 1) {
  throw new Error('--duration, --warmup, --workers, --procs, --repeat: out of range');
}
const selected = (s: Scenario) => only.includes(s);

const log = (msg: string) => console.error(`[bench] ${msg}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const mysqlUrl = (db: string) => new URL(db, MYSQL_BASE).toString();

// ---------------------------------------------------------------------------
// This box is shared and noisy: with --repeat N every ceiling and scenario
// runs N times and the run with the median rate is the one reported, with the
// spread (min..max) of all N beside it.

interface Spread {
  /** rates of all runs, lowest first */
  rates: number[];
}

async function median<T>(run: () => Promise<T>, rate: (r: T) => number, what: string): Promise<T & { spread: Spread }> {
  const results: T[] = [];
  for (let i = 0; i < repeat; i++) {
    if (repeat > 1) log(`${what}: run ${i + 1} of ${repeat}`);
    results.push(await run());
  }
  results.sort((a, b) => rate(a) - rate(b));
  return { ...results[Math.floor((results.length - 1) / 2)], spread: { rates: results.map(rate) } };
}

const spreadText = (s: Spread | undefined) => (s && s.rates.length > 1 ? `${s.rates[0].toFixed(0)}..${s.rates[s.rates.length - 1].toFixed(0)}` : '-');

// ---------------------------------------------------------------------------
// Ceilings.

interface Ceiling {
  name: string;
  qps: number;
  p99Ms: number;
  /** CPU of the process that drove it, % of one core (a Node client near 100% is itself the limit) */
  clientCpuPct?: number;
  note?: string;
  spread?: Spread;
}

async function redisGet(pipeline: number): Promise<Ceiling> {
  const u = new URL(REDIS_URL);
  const run = async (n: number) => {
    const { stdout } = await promisify(execFile)('redis-benchmark', ['-h', u.hostname, '-p', u.port || '6379', '-t', 'get', '-c', String(CONNECTIONS), '-P', String(pipeline), '-n', String(n), '--csv'], { maxBuffer: 1 << 20 });
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const lines = stdout.trim().split('\n').map((l) => l.split(',').map((c) => c.replace(/"/g, '')));
    const header = lines.find((l) => l[0] === 'test');
    const row = lines.find((l) => l[0] === 'GET');
    if (!row) throw new Error(`redis-benchmark: no GET row in ${JSON.stringify(stdout)}`);
    const col = (name: string) => (header ? header.indexOf(name) : -1);
    return { rps: Number(row[1]), p99: col('p99_latency_ms') > 0 ? Number(row[col('p99_latency_ms')]) : NaN };
  };
  const probe = await run(20_000 * pipeline);
  const n = Math.max(20_000, Math.min(50_000_000, Math.round(probe.rps * durationS)));
  const r = await run(n);
  return { name: `redis GET -c ${CONNECTIONS} -P ${pipeline}`, qps: round(r.rps), p99Ms: r.p99 };
}

/** Runs `loops` concurrent copies of `once` for the duration; latency and rate of the measured part. */
async function loop(loops: number, one: (i: number) => Promise<void>): Promise<{ qps: number; p99Ms: number; cpuPct: number }> {
  const hist = createHistogram();
  let phase = 0; // 0 warmup, 1 measure, 2 stop
  let count = 0;
  let errors = 0;
  let lastError = '';
  const loopers = Array.from({ length: loops }, async (_, i) => {
    while (phase < 2) {
      const t0 = performance.now();
      try {
        await one(i);
        if (phase === 1) {
          hist.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
          count++;
        }
      } catch (err) {
        errors++;
        lastError = (err as Error).message;
        await sleep(10);
      }
    }
  });
  await sleep(Math.min(warmupS, 2) * 1000);
  phase = 1;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await sleep(durationS * 1000);
  phase = 2;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(loopers);
  if (errors) log(`ceiling loop: ${errors} errors (last: ${lastError})`);
  return { qps: round(count / seconds), p99Ms: round(hist.percentile(99) / 1e6, 3), cpuPct: round(((cpu.user + cpu.system) / 1e6 / seconds) * 100, 0) };
}

function pool(db: string, size: number): mysql.Pool {
  return mysql.createPool({ uri: mysqlUrl(db), connectionLimit: size, maxIdle: size, enableKeepAlive: true, supportBigNumbers: true, decimalNumbers: true, timezone: 'Z', charset: 'utf8mb4_bin' });
}
const q = (p: mysql.Pool | mysql.PoolConnection, sql: string, params: unknown[] = []) =>
  new Promise<unknown>((resolve, reject) => (p as unknown as mysql.Connection).query(sql, params, (err, res) => (err ? reject(err) : resolve(res))));
const exec = (p: mysql.Pool | mysql.PoolConnection, sql: string, params: (string | number | null | Buffer)[]) =>
  new Promise<unknown>((resolve, reject) => (p as unknown as mysql.Connection).execute(sql, params, (err, res) => (err ? reject(err) : resolve(res))));
const end = (p: mysql.Pool) => new Promise<void>((resolve) => p.end(() => resolve()));

async function withServerConnection<T>(work: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = mysql.createConnection({ uri: MYSQL_BASE, multipleStatements: true });
  try {
    return await work(c);
  } finally {
    await new Promise<void>((resolve) => c.end(() => resolve()));
  }
}
const cq = (c: mysql.Connection, sql: string, params: unknown[] = []) => new Promise<unknown>((resolve, reject) => c.query(sql, params, (err, res) => (err ? reject(err) : resolve(res))));

async function prepareCeilingDb(): Promise<void> {
  await withServerConnection(async (c) => {
    await cq(c, `DROP DATABASE IF EXISTS \`${CEILING_DB}\``);
    await cq(c, `CREATE DATABASE \`${CEILING_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await cq(c, `USE \`${CEILING_DB}\``);
    // Shaped like the service's tables: an account row updated, a ledger row inserted.
    await cq(c, 'CREATE TABLE kv (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, balance_cents BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL) ENGINE=InnoDB');
    await cq(c, 'CREATE TABLE ledger (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, kv_id BIGINT UNSIGNED NOT NULL, amount_cents BIGINT NOT NULL, created_at_ms BIGINT NOT NULL, KEY ix_ledger_kv (kv_id, id)) ENGINE=InnoDB');
    const rows = Array.from({ length: 1000 }, (_, i) => `(${i + 1}, 0, 0)`).join(',');
    await cq(c, `INSERT INTO kv (id, balance_cents, updated_at_ms) VALUES ${rows}`);
  });
}

async function mysqlPointSelect(): Promise<Ceiling> {
  const p = pool(CEILING_DB, CONNECTIONS);
  try {
    const r = await loop(CONNECTIONS, () => exec(p, 'SELECT balance_cents FROM kv WHERE id = ?', [1 + Math.floor(Math.random() * 1000)]).then(() => undefined));
    return { name: `mysql2 point select x${CONNECTIONS}`, qps: r.qps, p99Ms: r.p99Ms, clientCpuPct: r.cpuPct };
  } finally {
    await end(p);
  }
}

async function mysqlTransaction(): Promise<Ceiling> {
  const p = pool(CEILING_DB, CONNECTIONS);
  const getConn = () => new Promise<mysql.PoolConnection>((resolve, reject) => p.getConnection((err, c) => (err ? reject(err) : resolve(c))));
  try {
    // Each loop has a row of its own (no lock waits), like the recharge lanes.
    const r = await loop(CONNECTIONS, async (i) => {
      const c = await getConn();
      try {
        const now = Date.now();
        await q(c, 'START TRANSACTION');
        await exec(c, 'UPDATE kv SET balance_cents = balance_cents + 1, updated_at_ms = ? WHERE id = ?', [now, i + 1]);
        await exec(c, 'INSERT INTO ledger (kv_id, amount_cents, created_at_ms) VALUES (?, ?, ?)', [i + 1, 1, now]);
        await q(c, 'COMMIT');
      } catch (err) {
        await q(c, 'ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    });
    return { name: `mysql2 tx (BEGIN; UPDATE; INSERT; COMMIT) x${CONNECTIONS}`, qps: r.qps, p99Ms: r.p99Ms, clientCpuPct: r.cpuPct };
  } finally {
    await end(p);
  }
}

// ---------------------------------------------------------------------------
// Processes: the echo server and the real server.

interface Proc {
  port: number;
  child: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

function track(child: ChildProcess): { output: string[]; exited: Promise<number | null> } {
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    output.push(...chunk.toString().split('\n').filter(Boolean));
    if (output.length > 500) output.splice(0, output.length - 500);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { output, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

function stopper(child: ChildProcess, exited: Promise<number | null>): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
}

const running = new Set<Proc>();

async function startEcho(): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/echo-server.ts', '--port', String(port), '--workers', String(workers)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const { output, exited } = track(child);
  const deadline = Date.now() + 30_000;
  while (!output.some((l) => l.startsWith('echo listening'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`echo server did not start:\n${output.join('\n')}`);
    }
    await sleep(50);
  }
  const proc: Proc = { port, child, output, stop: stopper(child, exited) };
  running.add(proc);
  return proc;
}

const useDist = !v['from-src'] && existsSync(`${ROOT}dist/main.js`);

/** The newest modification time under src/ (to warn about a dist/ older than its sources). */
function newestSource(dir = `${ROOT}src`): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    newest = Math.max(newest, e.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function startServer(env: Record<string, string> = {}): Promise<Proc & { env: Record<string, string> }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const fullEnv: Record<string, string> = {
    BIKE_HOST: '127.0.0.1',
    BIKE_PORT: String(port),
    BIKE_METRICS_PORT: String(metricsPort),
    BIKE_WORKERS: String(workers),
    BIKE_MYSQL_URL: mysqlUrl(BENCH_DB),
    BIKE_REDIS_URL: REDIS_URL,
    BIKE_SMS_SENDER: 'echo',
    BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE: '0',
    BIKE_CODE_RESEND_SECONDS: '0',
    BIKE_LOG_LEVEL: 'warn',
    // Sessions made by the bench expire soon instead of after 30 days in a shared Redis.
    BIKE_TOKEN_TTL_SECONDS: '3600',
    ...env,
  };
  const args = useDist ? ['dist/main.js', 'serve'] : ['--import', 'tsx', 'src/main.ts', 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...fullEnv },
    // Both are read (and the last lines kept) so a crash can be shown.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { output, exited } = track(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output.join('\n')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in 60 s:\n${output.join('\n')}`);
    }
    const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await sleep(100);
  }
  const proc = { port, child, output, env: fullEnv, stop: stopper(child, exited) };
  running.add(proc);
  return proc;
}

async function stop(p: Proc): Promise<void> {
  await p.stop();
  running.delete(p);
}

// ---------------------------------------------------------------------------
// innodb_flush_log_at_trx_commit: this is a shared MariaDB, so the original
// value always comes back, also on Ctrl-C.

let flushRestore: (() => Promise<void>) | null = null;

async function getFlush(): Promise<number> {
  return withServerConnection(async (c) => Number(((await cq(c, 'SELECT @@GLOBAL.innodb_flush_log_at_trx_commit AS v')) as { v: number }[])[0].v));
}
async function setFlush(value: number): Promise<void> {
  await withServerConnection((c) => cq(c, `SET GLOBAL innodb_flush_log_at_trx_commit = ${Number(value)}`));
}

async function cleanup(): Promise<void> {
  if (flushRestore) await flushRestore().catch((err) => log(`could not restore innodb_flush_log_at_trx_commit: ${(err as Error).message}`));
  await Promise.allSettled([...running].map((p) => p.stop()));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping servers${flushRestore ? ', restoring innodb_flush_log_at_trx_commit' : ''}`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------
// The scenarios.

interface Run {
  scenario: Scenario;
  depth: number;
}

const RUNS: Run[] = [
  { scenario: 'ping', depth: 1 },
  { scenario: 'ping', depth: 16 },
  { scenario: 'code', depth: 1 },
  { scenario: 'code', depth: 16 },
  { scenario: 'login', depth: 1 },
  { scenario: 'balance', depth: 1 },
  { scenario: 'recharge', depth: 1 },
  { scenario: 'ride', depth: 1 },
  { scenario: 'mixed', depth: 1 },
];

async function bench(port: number, scenario: Scenario, depth: number, label = `${scenario} ${CONNECTIONS}x${depth}`): Promise<BenchResult> {
  return runBench({
    scenario,
    connect: { host: '127.0.0.1', port },
    connections: CONNECTIONS,
    depth,
    durationS,
    warmupS,
    procs,
    mysqlUrl: mysqlUrl(BENCH_DB),
    label,
  });
}

interface Row {
  scenario: string;
  shape: string;
  qps: number;
  /** what is compared with the ceiling: requests/s, or pairs/s for login */
  measure: 'requests/s' | 'pairs/s';
  compared: number;
  p99Ms: number;
  errors: number;
  generatorCpuPct: number;
  ceiling: string;
  ceilingQps: number | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
  result: BenchResult;
  /** with --repeat: the rates (QPS, pairs/s for login and ride) of every run */
  spread?: Spread;
}

function judge(run: Run, r: BenchResult & { spread?: Spread }, ceilings: Record<string, Ceiling>): Row {
  const echo = ceilings[`echo x${run.depth}`];
  const redis = ceilings[`redis x${run.depth}`];
  const select = ceilings.select;
  const tx = ceilings.tx;
  const pick = (...cs: (Ceiling | undefined)[]): Ceiling | undefined => {
    const present = cs.filter((c): c is Ceiling => Boolean(c));
    return present.length ? present.reduce((a, b) => (b.qps < a.qps ? b : a)) : undefined;
  };
  let ceiling: Ceiling | undefined;
  let factor = 0;
  const readP99 = run.depth === 1 && (run.scenario === 'ping' || run.scenario === 'balance');
  switch (run.scenario) {
    case 'ping': [ceiling, factor] = [echo, 0.7]; break;
    case 'code': [ceiling, factor] = [redis, 0.6]; break;
    case 'balance': [ceiling, factor] = [pick(redis, select), 0.6]; break; // a Redis GET (the session) and a point select, in series: the slower bounds it
    case 'login': [ceiling, factor] = [tx, 0.6]; break; // one durable write (the user upsert) per pair
    case 'recharge': [ceiling, factor] = [tx, 0.7]; break;
    case 'ride': [ceiling, factor] = [tx, 0.7]; break; // UnlockBike and EndRide are one transaction each
    default: break;
  }
  const measure = run.scenario === 'login' ? 'pairs/s' : 'requests/s';
  const compared = run.scenario === 'login' ? r.pairsPerS ?? 0 : r.qps;
  const ratio = ceiling ? round(compared / ceiling.qps, 2) : null;
  const targets: string[] = [];
  let met: boolean | null = null;
  if (ceiling) {
    targets.push(`>= ${factor} x ceiling`);
    met = ratio! >= factor;
  }
  if (readP99) {
    targets.push('p99 < 10 ms');
    met = (met ?? true) && r.latencyMs.p99 < 10;
  }
  if (met !== null && r.errors > 0) met = false;
  return {
    scenario: run.scenario,
    shape: `${CONNECTIONS}x${run.depth}`,
    qps: r.qps,
    measure,
    compared,
    p99Ms: r.latencyMs.p99,
    errors: r.errors,
    generatorCpuPct: r.generatorCpu.percentOfOneCore,
    ceiling: ceiling ? ceiling.name : '-',
    ceilingQps: ceiling ? ceiling.qps : null,
    ratio,
    target: targets.join(', ') || '-',
    met,
    result: r,
    spread: r.spread,
  };
}

// The product's bar: the C++ (io_uring) server of the same product measured
// on this kind of box (64 connections): 14k RequestCode/s at depth 1, 2.1k
// RequestCode+Login pairs/s, and a collapse to a p99 of about 1 s at depth 16.
// We aim for 1.5x and 2x of its rates, and no collapse under pipelining.
const REFERENCE = { codeQps: 14_000, loginPairsPerS: 2_100 };

interface BarRow {
  what: string;
  reference: string;
  target: string;
  measured: string;
  met: boolean;
}

function productBar(rows: Row[]): BarRow[] {
  const find = (scenario: string, shape: string) => rows.find((r) => r.scenario === scenario && r.shape === shape);
  const bar: BarRow[] = [];
  const code1 = find('code', `${CONNECTIONS}x1`);
  if (code1) {
    const want = 1.5 * REFERENCE.codeQps;
    bar.push({ what: `RequestCode/s, ${code1.shape}`, reference: String(REFERENCE.codeQps), target: `>= ${want} (1.5x)`, measured: code1.qps.toFixed(0), met: code1.qps >= want && code1.errors === 0 });
  }
  const login = find('login', `${CONNECTIONS}x1`);
  if (login) {
    const want = 2 * REFERENCE.loginPairsPerS;
    bar.push({ what: `code+login pairs/s, ${login.shape}`, reference: String(REFERENCE.loginPairsPerS), target: `>= ${want} (2x)`, measured: login.compared.toFixed(0), met: login.compared >= want && login.errors === 0 });
  }
  const code16 = find('code', `${CONNECTIONS}x16`);
  if (code1 && code16) {
    // "No collapse": pipelining must not lower the rate, and the tail stays far from the reference's 1 s.
    bar.push({
      what: `RequestCode, ${code16.shape} (pipelined)`,
      reference: 'p99 ~1000 ms',
      target: `QPS >= ${code1.shape} QPS, p99 < 100 ms`,
      measured: `${code16.qps.toFixed(0)} QPS, p99 ${code16.p99Ms.toFixed(1)} ms`,
      met: code16.qps >= code1.qps && code16.p99Ms < 100 && code16.errors === 0,
    });
  }
  const ping = find('ping', `${CONNECTIONS}x1`);
  if (ping && ping.ratio !== null) {
    bar.push({ what: `Ping, ${ping.shape}`, reference: '-', target: '>= 0.7 x framed echo', measured: `${ping.ratio.toFixed(2)} x`, met: ping.ratio >= 0.7 && ping.errors === 0 });
  }
  return bar;
}

function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const runs = RUNS.filter((r) => selected(r.scenario));
  const started = new Date();
  log(`duration ${durationS} s (+${warmupS} s warmup) per run, ${repeat} run(s) each (median reported), ${workers} server workers, ${procs} generator thread(s), server from ${useDist ? 'dist/' : 'src/ via tsx (run `npm run build` to measure dist/)'}`);
  if (useDist && statSync(`${ROOT}dist/main.js`).mtimeMs < newestSource()) {
    log('WARNING: dist/ is older than src/: the figures are of the last build. Run `npm run build` first (or pass --from-src).');
  }
  log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);

  // (a) ceilings, only those the selected scenarios are compared with
  const ceilings: Record<string, Ceiling> = {};
  const depths = (s: Scenario[]) => [...new Set(runs.filter((r) => s.includes(r.scenario)).map((r) => r.depth))];
  for (const d of depths(['code', 'balance'])) {
    log(`ceiling: redis-benchmark GET -c ${CONNECTIONS} -P ${d}`);
    ceilings[`redis x${d}`] = await median(() => redisGet(d), (c) => c.qps, `redis GET -P ${d}`);
  }
  const wantSelect = runs.some((r) => r.scenario === 'balance');
  const wantTx = runs.some((r) => ['login', 'recharge', 'ride'].includes(r.scenario));
  if (wantSelect || wantTx) {
    await prepareCeilingDb();
    try {
      if (wantSelect) {
        log(`ceiling: mysql2 point select, ${CONNECTIONS} concurrent`);
        ceilings.select = await median(mysqlPointSelect, (c) => c.qps, 'mysql2 point select');
      }
      if (wantTx) {
        log(`ceiling: mysql2 transaction, ${CONNECTIONS} concurrent`);
        ceilings.tx = await median(mysqlTransaction, (c) => c.qps, 'mysql2 transaction');
      }
    } finally {
      await withServerConnection((c) => cq(c, `DROP DATABASE IF EXISTS \`${CEILING_DB}\``));
    }
  }
  const pingDepths = depths(['ping']);
  if (pingDepths.length) {
    const echo = await startEcho();
    try {
      for (const d of pingDepths) {
        log(`ceiling: framed echo server, ping ${CONNECTIONS}x${d}`);
        const r = await median(() => bench(echo.port, 'ping', d, `echo ${CONNECTIONS}x${d}`), (x) => x.qps, `echo ${CONNECTIONS}x${d}`);
        ceilings[`echo x${d}`] = { name: `framed echo ${CONNECTIONS}x${d}`, qps: r.qps, p99Ms: r.latencyMs.p99, clientCpuPct: r.generatorCpu.percentOfOneCore, spread: r.spread };
      }
    } finally {
      await stop(echo);
    }
  }

  // (b) the real server
  await withServerConnection((c) => cq(c, `DROP DATABASE IF EXISTS \`${BENCH_DB}\``));
  const rows: Row[] = [];
  const server = await startServer();
  try {
    for (const run of runs) {
      log(`scenario ${run.scenario} ${CONNECTIONS}x${run.depth}`);
      try {
        const rate = (r: BenchResult) => (run.scenario === 'login' || run.scenario === 'ride' ? r.pairsPerS ?? 0 : r.qps);
        rows.push(judge(run, await median(() => bench(server.port, run.scenario, run.depth), rate, `${run.scenario} ${CONNECTIONS}x${run.depth}`), ceilings));
      } catch (err) {
        if (!(err instanceof BenchSetupError)) throw err;
        log(err.message);
      }
    }
  } finally {
    await stop(server);
  }

  // levers
  const levers: { lever: string; setting: string; scenario: Scenario; qps: number; p99Ms: number; errors: number; spread: Spread }[] = [];
  if (v.levers) {
    const leverRun = async (lever: string, setting: string, env: Record<string, string>) => {
      const s = await startServer(env);
      try {
        for (const scenario of ['code', 'login', 'recharge'] as const) {
          log(`lever ${lever} = ${setting}: ${scenario} ${CONNECTIONS}x1`);
          const r = await median(() => bench(s.port, scenario, 1, `${lever}=${setting} ${scenario}`), (x) => x.qps, `${lever}=${setting} ${scenario}`);
          levers.push({ lever, setting, scenario, qps: r.qps, p99Ms: r.latencyMs.p99, errors: r.errors, spread: r.spread });
        }
      } finally {
        await stop(s);
      }
    };
    for (const level of ['info', 'warn']) await leverRun('BIKE_LOG_LEVEL', level, { BIKE_LOG_LEVEL: level });
    const original = await getFlush();
    flushRestore = async () => {
      await setFlush(original);
      flushRestore = null;
    };
    try {
      for (const value of [1, 2]) {
        await setFlush(value);
        await leverRun('innodb_flush_log_at_trx_commit', String(value), {});
      }
    } finally {
      await flushRestore?.();
      log(`innodb_flush_log_at_trx_commit restored to ${await getFlush()}`);
    }
    for (const n of [1, 2]) await leverRun('BIKE_WORKERS', String(n), { BIKE_WORKERS: String(n) });
  }

  // the database should still be consistent after all that
  const audit = await auditBenchDb();

  // (c) report
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  console.log('\nCeilings (this box, same concurrency):');
  console.log(
    table(
      ['ceiling', 'QPS', 'range of runs', 'p99 ms', 'client CPU %'],
      Object.values(ceilings).map((c) => [c.name, c.qps.toFixed(0), spreadText(c.spread), Number.isFinite(c.p99Ms) ? f(c.p99Ms) : '-', c.clientCpuPct === undefined ? '-' : c.clientCpuPct.toFixed(0)]),
    ),
  );
  console.log('\nScenarios (real server):');
  console.log(
    table(
      ['scenario', 'conns x depth', 'QPS', 'pairs/s', 'range of runs', 'p99 ms', 'errors', 'gen CPU %', 'ceiling', 'ceiling QPS', 'ratio', 'target', 'result'],
      rows.map((r) => [
        r.scenario,
        r.shape,
        r.qps.toFixed(0),
        r.result.pairsPerS === undefined ? '-' : r.result.pairsPerS.toFixed(0),
        spreadText(r.spread),
        f(r.p99Ms),
        r.errors,
        r.generatorCpuPct.toFixed(0),
        r.ceiling,
        r.ceilingQps === null ? '-' : r.ceilingQps.toFixed(0),
        r.ratio === null ? '-' : r.ratio.toFixed(2),
        r.target,
        r.met === null ? '-' : r.met ? 'met' : 'MISSED',
      ]),
    ),
  );
  const bar = productBar(rows);
  if (bar.length) {
    console.log('\nThe product bar (the C++ reference server on this kind of box):');
    console.log(table(['what', 'reference', 'target', 'measured', 'result'], bar.map((b) => [b.what, b.reference, b.target, b.measured, b.met ? 'met' : 'MISSED'])));
  }
  if (levers.length) {
    console.log('\nLevers (code, login and recharge, 64x1):');
    console.log(table(['lever', 'setting', 'scenario', 'QPS', 'range of runs', 'p99 ms', 'errors'], levers.map((l) => [l.lever, l.setting, l.scenario, l.qps.toFixed(0), spreadText(l.spread), f(l.p99Ms), l.errors])));
  }
  console.log(`\naudit of ${BENCH_DB}: ${audit}`);
  if (rows.some((r) => r.generatorCpuPct > 85 * procs)) console.log('note: the generator used nearly a whole core in some runs: rerun with --procs 2 to see whether it was the limit');

  const out = {
    startedAt: started.toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadavgAtEnd: loadavg() },
    settings: { durationS, warmupS, repeat, connections: CONNECTIONS, workers, generatorThreads: procs, server: useDist ? 'dist' : 'tsx' },
    ceilings,
    scenarios: rows.map(({ result, ...row }) => ({ ...row, latencyMs: result.latencyMs, errorsByCode: result.errorsByCode, byType: result.byType, generatorCpu: result.generatorCpu, pairsPerS: result.pairsPerS })),
    productBar: bar,
    levers,
    audit,
  };
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  writeFileSync(`${ROOT}bench/results/latest.json`, JSON.stringify(out, null, 2) + '\n');
  console.log('written: bench/results/latest.json');
}

async function auditBenchDb(): Promise<string> {
  const [{ Db }, { audit, auditProblems }] = await Promise.all([import('../src/stores/mysql.js'), import('../src/dao/audit.js')]);
  const options = { url: mysqlUrl(BENCH_DB), poolSize: 2, timeoutMs: 30_000 };
  const db = new Db(options);
  try {
    const problems = auditProblems(await audit(db));
    return problems.length ? `${problems.length} violation(s): ${problems.join('; ')}` : 'all invariants hold';
  } catch (err) {
    return `not run (${(err as Error).message})`;
  } finally {
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    console.error(err);
    await cleanup();
    process.exit(1);
  },
);
