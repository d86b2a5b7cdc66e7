// Hardening, CI-sized: the short failure drills (the same code as `npm run
// drills`, drills/lib), the abuse limits, what the logs never contain, and
// that no SQL in src/dao is built from values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { workerKill, redisCut, sigtermRestart } from '../../drills/lib/drills.js';
import type { DrillResult } from '../../drills/lib/harness.js';
import { startPrivateRedis } from '../../drills/lib/redis.js';
import { sleep, waitFor } from '../../drills/lib/procs.js';
import { startServer } from '../helpers/server.js';
import { dropDatabase } from '../helpers/db.js';
import { connect, uniquePhone } from '../helpers/users.js';
import { ErrorCode, ServerError } from '../../src/client/client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function explain(r: DrillResult): string {
  return [`${r.name}: ${r.reasons.join('\n')}`, `load: ${JSON.stringify(r.load.errors)}`, ...r.notes].join('\n');
}

for (const d of [workerKill, redisCut, sigtermRestart]) {
  test(`drill ${d.name} (short): ${d.proves}`, { timeout: 240_000 }, async () => {
    const r = await d.run({ short: true });
    assert.ok(r.pass, explain(r));
    assert.ok(r.load.ok > 50, `the load made too little progress: ${JSON.stringify(r.load)}`);
    assert.match(r.money, /^audit ok;/);
  });
}

async function rejection(p: Promise<unknown>): Promise<ServerError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ServerError, `expected a ServerError, got ${String(err)}`);
  return err;
}

test('rate limits: RequestCode per address per minute, CODE_INVALID per phone per hour -> RATE_LIMITED with retry_after_ms', { timeout: 120_000 }, async () => {
  // A Redis of its own: the per-address counter is keyed by the client IP, 127.0.0.1 for every local test.
  const redis = await startPrivateRedis();
  const server = await startServer({
    workers: 2,
    env: { BIKE_REDIS_URL: redis.url, BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE: '3', BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '3', BIKE_CODE_RESEND_SECONDS: '0' },
  });
  try {
    const client = await connect(server.port);
    try {
      for (let i = 0; i < 3; i++) await client.requestCode(uniquePhone());
      const limited = await rejection(client.requestCode(uniquePhone()));
      assert.equal(limited.code, ErrorCode.RATE_LIMITED);
      assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 60_000, `retry_after_ms ${limited.retryAfterMs}`);
    } finally {
      client.close();
    }

    // The address limit is full: a phone's failures are counted on a server with that limit off.
    const server2 = await startServer({ workers: 1, env: { BIKE_REDIS_URL: redis.url, BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE: '0', BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '3' } });
    const c2 = await connect(server2.port);
    try {
      const phone = uniquePhone();
      const sent = await c2.requestCode(phone);
      const wrong = sent.debugCode === '000000' ? '111111' : '000000';
      for (let i = 0; i < 3; i++) assert.equal((await rejection(c2.login(phone, wrong))).code, ErrorCode.CODE_INVALID);
      const limited = await rejection(c2.login(phone, sent.debugCode)); // even the right code, once over the limit
      assert.equal(limited.code, ErrorCode.RATE_LIMITED);
      assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 3_600_000, `retry_after_ms ${limited.retryAfterMs}`);
      // Another phone is not affected.
      const other = uniquePhone();
      const ok = await c2.login(other, (await c2.requestCode(other)).debugCode);
      assert.ok(ok.token.length > 0);
    } finally {
      c2.close();
      await server2.stop();
      await dropDatabase(server2.database);
    }
  } finally {
    await server.stop();
    await dropDatabase(server.database);
    await redis.stop();
  }
});

test('logs at debug with the log SMS sender: no token, no full phone number (only masked)', { timeout: 120_000 }, async () => {
  const server = await startServer({ workers: 1, env: { BIKE_LOG_LEVEL: 'debug', BIKE_SMS_SENDER: 'log' } });
  try {
    const phone = uniquePhone();
    const masked = phone.slice(0, 3) + '*'.repeat(phone.length - 7) + phone.slice(-4);
    const client = await connect(server.port);
    let token = '';
    try {
      const sent = await client.requestCode(phone);
      assert.equal(sent.debugCode, '', 'the log sender must not echo the code');
      // The code reaches the operator through the log, next to the masked phone.
      const line = await waitFor(() => server.output.find((l) => l.includes(masked) && l.includes('smsCode')), 10_000);
      assert.ok(line, `no log line with the masked phone ${masked}`);
      const code = /"smsCode":"(\d{6})"/.exec(line)![1];
      await assert.rejects(client.login(phone, code === '000000' ? '111111' : '000000')); // a failure path too
      const reply = await client.login(phone, code);
      token = reply.token;
      await client.recharge(500, 'log-test-1');
      await client.balance();
      await client.accountRecords();
      await assert.rejects(client.request('GetBalance', { token: `${token}x` })); // an unknown token is not logged either
      await client.logout();
      await assert.rejects(client.balance()); // the logged-out token, refused
    } finally {
      client.close();
    }
    await sleep(500);
    await server.stop();
    const output = server.output.join('\n');
    assert.ok(output.includes(masked), 'the masked phone should appear');
    assert.ok(output.includes('"level":20'), 'debug lines expected at BIKE_LOG_LEVEL=debug');
    assert.ok(token.length >= 22);
    assert.ok(!output.includes(token), 'a session token appears in the logs');
    assert.ok(!output.includes(token.slice(0, 16)), 'part of a session token appears in the logs');
    assert.ok(!output.includes(phone), 'a full phone number appears in the logs');
    assert.ok(!output.includes(phone.slice(1)), 'a full phone number (without +) appears in the logs');
  } finally {
    await server.stop();
    await dropDatabase(server.database);
  }
});

// ---------------------------------------------------------------------------
// No SQL built from values in src/dao: every statement is the first argument
// of Executor.rows/run, written as string literals (joined with + at most) or
// a template literal whose only interpolation is the constant COLUMNS, with
// its values passed separately as a placeholder array.

interface Call {
  file: string;
  line: number;
  sqlText: string;
}

/** Reads one JS string literal starting at `i`; returns [end index, text, interpolations]. */
function literalAt(src: string, i: number): [number, string, string[]] | null {
  const q = src[i];
  if (q !== "'" && q !== '"' && q !== '`') return null;
  let text = '';
  const holes: string[] = [];
  let j = i + 1;
  while (j < src.length && src[j] !== q) {
    if (src[j] === '\\') {
      text += src[j + 1];
      j += 2;
    } else if (q === '`' && src[j] === '$' && src[j + 1] === '{') {
      const close = src.indexOf('}', j);
      holes.push(src.slice(j + 2, close).trim());
      j = close + 1;
    } else text += src[j++];
  }
  return [j + 1, text, holes];
}

function statementCalls(file: string, src: string, problems: string[]): Call[] {
  const calls: Call[] = [];
  const re = /\.(rows|run)\s*(<[^()]*?>)?\s*\(/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const line = src.slice(0, m.index).split('\n').length;
    let i = m.index + m[0].length;
    const skip = () => {
      while (/\s/.test(src[i])) i++;
    };
    let sqlText = '';
    for (;;) {
      skip();
      const lit = literalAt(src, i);
      if (!lit) {
        problems.push(`${file}:${line}: the SQL is not a literal (${src.slice(i, i + 40).split('\n')[0]})`);
        break;
      }
      const [end, text, holes] = lit;
      for (const h of holes) if (h !== 'COLUMNS') problems.push(`${file}:${line}: template literal interpolates \${${h}}`);
      sqlText += text;
      i = end;
      skip();
      if (src[i] === '+') {
        i++;
        continue;
      }
      if (src[i] !== ',') problems.push(`${file}:${line}: the SQL literal is followed by "${src[i]}" (concatenation or call?), not by its parameters`);
      else {
        i++;
        skip();
        if (src[i] !== '[') problems.push(`${file}:${line}: parameters are not an array literal`);
      }
      break;
    }
    calls.push({ file, line, sqlText });
  }
  return calls;
}

test('src/dao: no SQL built by concatenation or interpolation of values; every statement through Executor.rows/run with placeholders', () => {
  const dir = `${ROOT}src/dao/`;
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 4, 'src/dao/*.ts not found');
  const problems: string[] = [];
  let statements = 0;
  for (const f of files) {
    const src = readFileSync(dir + f, 'utf8');
    // Nothing bypasses the Executor.
    for (const bad of ['.query(', '.execute(', 'mysql2', 'format(', 'escape(', '.raw(']) if (src.includes(bad)) problems.push(`${f}: uses ${bad}`);
    // COLUMNS, the only interpolation allowed, is itself one plain literal.
    const columns = /const COLUMNS\s*=\s*([^;]+);/.exec(src);
    if (columns && !/^'[a-z_, ]+'$/.test(columns[1].trim())) problems.push(`${f}: COLUMNS is not a plain list of column names: ${columns[1]}`);
    const calls = statementCalls(f, src, problems);
    statements += calls.length;
    for (const c of calls) {
      if (!/^\s*(SELECT|INSERT|UPDATE|DELETE)\b/i.test(c.sqlText)) problems.push(`${c.file}:${c.line}: not a statement: ${c.sqlText.slice(0, 60)}`);
      // A value written into the SQL text: a quoted literal compared with a column is allowed only for
      // fixed enum values ('active', 'in_use', ...), never for anything that came from a caller.
      for (const q of c.sqlText.match(/'[^']*'/g) ?? []) if (!/^'[a-z_]+'$/.test(q)) problems.push(`${c.file}:${c.line}: literal ${q} in SQL`);
      if (/\$\{/.test(c.sqlText)) problems.push(`${c.file}:${c.line}: interpolation in SQL`);
    }
    // Every SQL-looking string of the file is one of those statements (none is assembled elsewhere).
    const sqlish = src.match(/(['"`])\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b/g) ?? [];
    const inCalls = calls.length;
    if (sqlish.length > inCalls) problems.push(`${f}: ${sqlish.length} SQL strings but only ${inCalls} Executor.rows/run calls`);
  }
  assert.ok(statements >= 20, `only ${statements} statements found: the scanner is broken`);
  assert.deepEqual(problems, []);
});
