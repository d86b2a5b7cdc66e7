// loadConfig(env): the option table of PROTOCOL.md section 6 (names, env
// names, defaults), the precedence env > BIKE_CONFIG file > defaults, and
// refusal of bad values with a message naming the option.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, type Config } from '../../src/config/config.js';
import { schema, usableCores } from '../../src/config/schema.js';

const PROTOCOL_MD = readFileSync(fileURLToPath(new URL('../../../shared/PROTOCOL.md', import.meta.url)), 'utf8');

interface OptionRow {
  option: keyof Config;
  env: string;
  default: string;
}

function section6Table(): OptionRow[] {
  const section = PROTOCOL_MD.split(/^## /m).find((s) => s.startsWith('6. '));
  assert.ok(section, 'PROTOCOL.md has a section 6');
  const rows: OptionRow[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 3 || !/^BIKE_/.test(cells[1])) continue;
    // "metricsPort (HTTP: ...)" -> "metricsPort"
    rows.push({ option: cells[0].split(/\s/)[0] as keyof Config, env: cells[1], default: cells[2] });
  }
  return rows;
}

const ROWS = section6Table();
const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

const dir = mkdtempSync(path.join(tmpdir(), 'bike-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function configFile(content: unknown): string {
  const file = path.join(dir, `config-${++files}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Asserts loadConfig throws a ConfigError whose message names `option` (as a whole word). */
function assertRefused(env: NodeJS.ProcessEnv, option: string): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`(^|[^A-Za-z])${option}([^A-Za-z]|$)`), `the message names ${option}: ${err.message}`);
      return true;
    },
  );
}

test('PROTOCOL.md section 6 lists the 24 options', () => {
  assert.equal(ROWS.length, 24);
});

test('defaults equal the PROTOCOL.md section 6 table (workers = number of usable cores)', () => {
  const config = loadConfig({});
  const cores = usableCores();
  assert.ok(cores >= 1 && cores <= availableParallelism());
  for (const row of ROWS) {
    assert.ok(row.option in schema, `${row.option} is an option`);
    const expected = row.option === 'workers' ? String(cores) : row.default;
    assert.equal(String(config[row.option]), expected, `default of ${row.option}`);
  }
  // Numbers are numbers, not numeric strings.
  assert.equal(typeof config.port, 'number');
  assert.equal(typeof config.maxBodyBytes, 'number');
});

test('usableCores: the cgroup v2 CPU quota when there is one, else the cores', () => {
  const cores = availableParallelism();
  assert.equal(usableCores(configFile('max 100000\n')), cores);
  assert.equal(usableCores(configFile('50000 100000\n')), 1, 'half a core is one worker');
  assert.equal(usableCores(configFile('150000 100000\n')), Math.min(cores, 2), 'a started core counts');
  assert.equal(usableCores(configFile(`${(cores + 8) * 100000} 100000\n`)), cores, 'never more than the machine has');
  assert.equal(usableCores(path.join(dir, 'no-cpu.max')), cores);
});

test('every option of the table has its env name (BIKE_ + upper snake case), and the env sets it', () => {
  // A value different from the default, valid for each option.
  const other: Record<string, string> = {
    host: '127.0.0.1',
    mysqlUrl: 'mysql://root@db.example:3307/other',
    redisUrl: 'redis://cache.example:6380/2',
    smsSender: 'echo',
    logLevel: 'debug',
  };
  for (const row of ROWS) {
    assert.equal(row.env, `BIKE_${upperSnake(row.option)}`, `env name of ${row.option} follows the rule`);
    assert.equal((schema as Record<string, { env?: string }>)[row.option].env, row.env, `schema env of ${row.option}`);
    const value = other[row.option] ?? String(Number(row.option === 'workers' ? 1 : row.default) + 3);
    const config = loadConfig({ [row.env]: value });
    assert.equal(String(config[row.option]), value, `${row.env}=${value} sets ${row.option}`);
  }
});

test('env wins over the BIKE_CONFIG file, which wins over the defaults', () => {
  const file = configFile({ port: 7100, idleTimeoutMs: 1234, smsSender: 'echo', host: '10.0.0.1' });
  const config = loadConfig({ BIKE_CONFIG: file, BIKE_PORT: '7200', BIKE_HOST: '127.0.0.2' });
  assert.equal(config.port, 7200, 'env over file');
  assert.equal(config.host, '127.0.0.2', 'env over file');
  assert.equal(config.idleTimeoutMs, 1234, 'file over default');
  assert.equal(config.smsSender, 'echo', 'file over default');
  assert.equal(config.maxBodyBytes, 65536, 'default where neither says anything');
  // The file alone.
  assert.equal(loadConfig({ BIKE_CONFIG: file }).port, 7100);
});

test('loadConfig reads only the env it is given', () => {
  const saved = process.env.BIKE_PORT;
  process.env.BIKE_PORT = '7999';
  try {
    assert.equal(loadConfig({}).port, 7000);
  } finally {
    if (saved === undefined) delete process.env.BIKE_PORT;
    else process.env.BIKE_PORT = saved;
  }
});

test('bad values are refused with a ConfigError naming the option', () => {
  assertRefused({ BIKE_PORT: 'abc' }, 'port');
  assertRefused({ BIKE_PORT: '70000' }, 'port');
  assertRefused({ BIKE_MAX_BODY_BYTES: '0' }, 'maxBodyBytes');
  assertRefused({ BIKE_MAX_INFLIGHT_PER_CONNECTION: '-1' }, 'maxInflightPerConnection');
  assertRefused({ BIKE_WORKERS: '1.5' }, 'workers');
  assertRefused({ BIKE_IDLE_TIMEOUT_MS: 'soon' }, 'idleTimeoutMs');
  assertRefused({ BIKE_SMS_SENDER: 'carrier-pigeon' }, 'smsSender');
  assertRefused({ BIKE_LOG_LEVEL: 'loud' }, 'logLevel');
  assertRefused({ BIKE_MYSQL_URL: 'postgres://x@y/z' }, 'mysqlUrl');
  assertRefused({ BIKE_REDIS_URL: 'not a url' }, 'redisUrl');
  assertRefused({ BIKE_FARE_STEP_SECONDS: '0' }, 'fareStepSeconds'); // would divide by zero
  assertRefused({ BIKE_CONFIG: configFile({ maxBodyBytes: 0 }) }, 'maxBodyBytes');
  assertRefused({ BIKE_CONFIG: configFile({ port: 'seven thousand' }) }, 'port');
});

test('an unknown key in the file is refused, naming the key', () => {
  assertRefused({ BIKE_CONFIG: configFile({ port: 7001, maxBodyByts: 1024 }) }, 'maxBodyByts');
});

test('a missing or unreadable BIKE_CONFIG file is a ConfigError', () => {
  assert.throws(() => loadConfig({ BIKE_CONFIG: path.join(dir, 'does-not-exist.json') }), ConfigError);
  assert.throws(() => loadConfig({ BIKE_CONFIG: configFile('{ "port": ') }), ConfigError);
});

test('smsSender echo is refused with NODE_ENV=production, allowed otherwise', () => {
  assertRefused({ BIKE_SMS_SENDER: 'echo', NODE_ENV: 'production' }, 'smsSender');
  assertRefused({ BIKE_CONFIG: configFile({ smsSender: 'echo' }), NODE_ENV: 'production' }, 'smsSender');
  assert.equal(loadConfig({ BIKE_SMS_SENDER: 'echo', NODE_ENV: 'test' }).smsSender, 'echo');
  assert.equal(loadConfig({ BIKE_SMS_SENDER: 'log', NODE_ENV: 'production' }).smsSender, 'log');
});
