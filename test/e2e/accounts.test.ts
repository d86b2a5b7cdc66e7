// End-to-end tests of the accounts capability (PROTOCOL.md sections 3-5):
// codes, login, sessions across instances, balance, recharge, the ledger and
// its pages, the abuse limits, and behaviour while a store is unreachable.
// Every test talks to real server processes through the SDK; the ledger and
// ride invariants are audited after every test.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { BikeClient, ErrorCode } from '../../src/client/client.js';
import { codec } from '../../src/protocol/codec.js';
import { encodeFrame, HEADER_BYTES } from '../../src/protocol/header.js';
import { MessageType, REQUESTS, type RequestName } from '../../src/protocol/types.js';
import { RecordKind, type ErrorMessage, type RechargeReply, type RequestCodeReply } from '../../src/protocol/messages.js';
import { Db } from '../../src/stores/mysql.js';
import { upsertUserForLogin } from '../../src/dao/users.js';
import { startServer, mysqlUrlFor, testDatabaseName, REDIS_URL, type StartOptions, type TestServer } from '../helpers/server.js';
import { auditDatabase, count, dropDatabase, openDb } from '../helpers/db.js';
import { plain, rejectsWith, tally } from '../helpers/outcomes.js';
import { connect, loggedIn, uniquePhone } from '../helpers/users.js';
import { TcpProxy } from '../helpers/proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A six-digit code guaranteed to differ from `code`. */
const otherCode = (code: string, shift = 1) => String((Number(code) + shift) % 1_000_000).padStart(6, '0');

/**
 * A fixture: one server (and its database) for a describe block, with the
 * audit after every test and every client closed.
 */
function fixture(options: StartOptions | (() => Promise<StartOptions>) = {}) {
  const state = {
    server: undefined as unknown as TestServer,
    db: undefined as unknown as Db,
    clients: [] as BikeClient[],
    extraCleanup: [] as (() => Promise<void> | void)[],
    async client(token = ''): Promise<BikeClient> {
      const c = await connect(state.server.port, token ? { token } : {});
      state.clients.push(c);
      return c;
    },
    async user(): Promise<{ client: BikeClient; phone: string; userId: number }> {
      const u = await loggedIn(state.server.port);
      state.clients.push(u.client);
      return u;
    },
  };
  before(async () => {
    const opts = typeof options === 'function' ? await options() : options;
    state.server = await startServer({ workers: 2, ...opts });
    state.db = openDb(state.server.database);
  });
  afterEach(async () => {
    for (const c of state.clients.splice(0)) c.close();
    const { problems } = await auditDatabase(state.server.database);
    assert.deepEqual(problems, [], 'audit after the test');
  });
  after(async () => {
    for (const c of state.clients.splice(0)) c.close();
    await state.db?.close();
    if (state.server) {
      await state.server.stop();
      await dropDatabase(state.server.database);
    }
    for (const f of state.extraCleanup.splice(0)) await f();
  });
  return state;
}



/**
 * Rows holding the user's account: an `accounts` row where the schema has
 * that table, else the user row itself (which then carries the balance).
 */
async function accountRows(db: Db, userId: number): Promise<number> {
  const hasTable = await count(db, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'accounts'", []);
  if (hasTable) return count(db, 'SELECT COUNT(*) AS n FROM accounts WHERE user_id = ?', [userId]);
  return count(db, 'SELECT COUNT(*) AS n FROM users WHERE id = ? AND balance_cents IS NOT NULL', [userId]);
}

/**
 * One request on a fresh socket bound to `localAddress` (any 127.0.0.0/8
 * address is loopback on Linux): a remote address that no other test shares.
 */
async function rawRequest(port: number, localAddress: string, name: RequestName, message: object): Promise<{ ok: true; body: Buffer } | { ok: false; error: ErrorMessage }> {
  const entry = REQUESTS.find((r) => r.request === name)!;
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(encodeFrame(entry.id, 1, codec<object>(entry.request).encode(message)));
    const frame = await new Promise<{ type: number; body: Buffer }>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < HEADER_BYTES) return;
        const length = buf.readUInt32BE(8);
        if (buf.length < HEADER_BYTES + length) return;
        clearTimeout(timer);
        assert.equal(buf.readUInt32BE(4), 1, 'answer echoes the requestId');
        resolve({ type: buf.readUInt16BE(2), body: buf.subarray(HEADER_BYTES, HEADER_BYTES + length) });
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before an answer')));
    });
    if (frame.type === MessageType.Error) return { ok: false, error: codec<ErrorMessage>('Error').decode(frame.body) };
    assert.equal(frame.type, entry.id | 0x8000, 'answer type');
    return { ok: true, body: frame.body };
  } finally {
    socket.destroy();
  }
}

/** A loopback address nobody else uses (never 127.0.0.1). */
const uniqueLoopback = () => `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

/** The pids of the primary's children (the workers). */
function workerPids(server: TestServer): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(server.process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
}

async function readyStatus(server: TestServer): Promise<number> {
  return fetch(server.metricsUrl('/readyz')).then(
    (r) => r.status,
    () => 0,
  );
}

/** Polls until `check` returns true, failing after `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------

describe('accounts', () => {
  // Failure limit off: the concurrency tests below produce many CODE_INVALIDs on one phone on purpose.
  const f = fixture({ env: { BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '0' } });

  test('full flow: code, login, balance, recharge, records, logout, login again', { timeout: 60_000 }, async () => {
    const phone = uniquePhone();
    const c = await f.client();
    const sent = await c.requestCode(phone);
    assert.match(sent.debugCode, /^[0-9]{6}$/);
    const t0 = Date.now();
    const first = await c.login(phone, sent.debugCode);
    assert.equal(first.newUser, true);
    assert.equal(first.balanceCents, 0);
    assert.ok(first.userId > 0);
    assert.match(first.token, /^[\x21-\x7e]{22,128}$/, 'printable ASCII, at most 128 chars, room for 128 bits');
    assert.ok(first.expiresAtMs > t0, 'token expires in the future');
    assert.equal(await c.balance(), 0);

    const r = await c.recharge(1234, 'flow-1');
    assert.deepEqual({ balance: r.balanceCents, duplicate: r.duplicate }, { balance: 1234, duplicate: false });
    assert.ok(r.recordId > 0);
    assert.equal(await c.balance(), 1234);

    const page = await c.accountRecords();
    assert.equal(page.nextCursor, '');
    assert.equal(page.records.length, 1);
    const rec = page.records[0];
    assert.equal(rec.recordId, r.recordId);
    assert.equal(rec.kind, RecordKind.RECHARGE);
    assert.equal(rec.amountCents, 1234);
    assert.equal(rec.balanceAfterCents, 1234);
    assert.equal(rec.rideId, 0);
    assert.ok(rec.createdAtMs >= t0 - 60_000 && rec.createdAtMs <= Date.now() + 60_000, 'created_at_ms is a ms timestamp');

    await c.logout();
    await rejectsWith(c.balance(), ErrorCode.UNAUTHENTICATED, 'GetBalance after logout');
    await rejectsWith(c.recharge(5, 'flow-2'), ErrorCode.UNAUTHENTICATED, 'Recharge after logout');
    await rejectsWith(c.logout(), ErrorCode.UNAUTHENTICATED, 'Logout of a logged-out token');
    await rejectsWith(c.accountRecords(), ErrorCode.UNAUTHENTICATED, 'ListAccountRecords after logout');

    const c2 = await f.client();
    const again = await c2.login(phone, (await c2.requestCode(phone)).debugCode);
    assert.equal(again.newUser, false);
    assert.equal(again.userId, first.userId);
    assert.equal(again.balanceCents, 1234, 'balance kept (the refused recharge had no effect)');
    assert.notEqual(again.token, first.token);
    assert.equal(await c2.balance(), 1234);
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM users WHERE phone = ?', [phone]), 1);
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ?', [first.userId]), 1);
  });

  test('missing or unknown token is UNAUTHENTICATED', { timeout: 30_000 }, async () => {
    const c = await f.client();
    await rejectsWith(c.balance(), ErrorCode.UNAUTHENTICATED, 'no token');
    c.token = 'not-a-real-token-' + 'x'.repeat(30);
    await rejectsWith(c.balance(), ErrorCode.UNAUTHENTICATED, 'unknown token');
    c.token = 'x'.repeat(129);
    await rejectsWith(c.balance(), ErrorCode.UNAUTHENTICATED, 'over-long token');
  });

  test('a token works on every connection and on another server instance; logout on one ends it on the other', { timeout: 90_000 }, async () => {
    const { client: a, userId } = await f.user();
    await a.recharge(500, 'cross-1');
    const token = a.token;

    // New connections to the same instance (the kernel spreads them over both workers).
    for (let i = 0; i < 6; i++) {
      const c = await f.client(token);
      assert.equal(await c.balance(), 500, `connection ${i}`);
    }

    // A second, separate server process on the same database and Redis.
    const b = await startServer({ workers: 2, database: f.server.database, env: { BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '0' } });
    try {
      const onB: BikeClient[] = [];
      for (let i = 0; i < 4; i++) onB.push(await connect(b.port, { token }));
      try {
        for (const c of onB) assert.equal(await c.balance(), 500);
        const r = await onB[0].recharge(25, 'cross-2');
        assert.equal(r.balanceCents, 525);
        assert.equal(await a.balance(), 525, 'server A sees what B did');
        // The same idempotency key on A returns B's stored answer.
        const dup = await a.recharge(999, 'cross-2');
        assert.deepEqual(plain(dup), { balanceCents: 525, recordId: r.recordId, duplicate: true });

        await a.logout(); // on server A
        for (const c of onB) await rejectsWith(c.balance(), ErrorCode.UNAUTHENTICATED, 'token on B after logout on A');
        await rejectsWith(a.balance(), ErrorCode.UNAUTHENTICATED, 'token on A after logout on A');
        const fresh = await connect(b.port, { token });
        onB.push(fresh);
        await rejectsWith(fresh.balance(), ErrorCode.UNAUTHENTICATED, 'token on a new connection to B');
      } finally {
        for (const c of onB) c.close();
      }
    } finally {
      await b.stop();
    }
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ?', [userId]), 2);
  });

  test('50 simultaneous logins with one code: exactly one succeeds', { timeout: 90_000 }, async () => {
    const phone = uniquePhone();
    const clients = await Promise.all(Array.from({ length: 50 }, () => f.client()));
    const { debugCode } = await clients[0].requestCode(phone);
    const results = await Promise.allSettled(clients.map((c) => c.login(phone, debugCode)));
    assert.deepEqual(tally(results), { OK: 1, CODE_INVALID: 49 });
    const winner = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<BikeClient['login']>>>;
    assert.equal(winner.value.newUser, true);
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM users WHERE phone = ?', [phone]), 1);
    assert.equal(await accountRows(f.db, winner.value.userId), 1);
    // The code is used up: one more try fails too.
    await rejectsWith(clients[1].login(phone, debugCode), ErrorCode.CODE_INVALID);
  });

  test('the login upsert under a race: 50 concurrent transactions on one phone create one user', { timeout: 90_000 }, async () => {
    const phone = uniquePhone();
    // A pool as large as the race, so all 50 transactions really run at once.
    const options = { url: mysqlUrlFor(f.server.database), poolSize: 50, timeoutMs: 20_000 };
    const db = new Db(options);
    try {
      const now = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => db.transaction((tx) => upsertUserForLogin(tx, phone, now))));
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      assert.deepEqual(failed, [], 'every upsert succeeds');
      const rows = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof upsertUserForLogin>>>).value);
      assert.equal(rows.filter((r) => r.newUser).length, 1, 'exactly one newUser');
      assert.equal(new Set(rows.map((r) => r.userId)).size, 1, 'one user id for all');
      assert.ok(rows.every((r) => r.balanceCents === 0));
      const userId = rows[0].userId;
      assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM users WHERE phone = ?', [phone]), 1);
      assert.equal(await accountRows(f.db, userId), 1);
      assert.equal(await count(f.db, 'SELECT login_count AS n FROM users WHERE phone = ?', [phone]), 50);
    } finally {
      await db.close();
    }
  });

  test('1000 concurrent 1-cent recharges over 20 connections, then 100 repeats of one key', { timeout: 180_000 }, async () => {
    const { client: first, userId } = await f.user();
    const clients = await Promise.all(Array.from({ length: 20 }, () => f.client(first.token)));
    const before = await first.balance();
    assert.equal(before, 0);

    const results = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => clients[i % 20].recharge(1, `bulk-${i}`)));
    assert.deepEqual(tally(results), { OK: 1000 });
    const replies = results.map((r) => (r as PromiseFulfilledResult<RechargeReply>).value);
    assert.ok(replies.every((r) => !r.duplicate));
    assert.equal(new Set(replies.map((r) => r.recordId)).size, 1000, 'distinct record ids');
    // Recharges of one account are serialized: the balances after are exactly 1..1000.
    assert.deepEqual(
      replies.map((r) => r.balanceCents).sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => before + i + 1),
    );
    assert.equal(await first.balance(), before + 1000);
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ? AND kind = 1', [userId]), 1000);

    // 100 concurrent repeats of ONE fresh key, each with a different amount.
    const mid = await first.balance();
    const repeats = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => clients[i % 20].recharge(i + 1, 'same-key')));
    assert.deepEqual(tally(repeats), { OK: 100 });
    const same = repeats.map((r) => (r as PromiseFulfilledResult<RechargeReply>).value);
    const fresh = same.filter((r) => !r.duplicate);
    assert.ok(fresh.length <= 1, `at most one non-duplicate reply, got ${fresh.length}`);
    assert.equal(new Set(same.map((r) => r.recordId)).size, 1, 'one record id in every reply');
    assert.equal(new Set(same.map((r) => r.balanceCents)).size, 1, 'one balance in every reply');
    const [rec] = await f.db.rows<{ amount_cents: number; balance_after_cents: number }>(
      'SELECT amount_cents, balance_after_cents FROM account_records WHERE id = ? AND user_id = ?',
      [same[0].recordId, userId],
    );
    const applied = Number(rec.amount_cents);
    assert.ok(applied >= 1 && applied <= 100);
    if (fresh.length === 1) assert.equal(applied, same.indexOf(fresh[0]) + 1, 'the applied amount is the non-duplicate one');
    assert.equal(same[0].balanceCents, mid + applied);
    assert.equal(Number(rec.balance_after_cents), mid + applied);
    assert.equal(await first.balance(), mid + applied, 'balance changed once');
    assert.equal(await count(f.db, "SELECT COUNT(*) AS n FROM account_records WHERE user_id = ? AND idempotency_key = 'same-key'", [userId]), 1);
    // Later, one more repeat still answers the first reply as stored.
    assert.deepEqual(plain(await first.recharge(1, 'same-key')), { balanceCents: mid + applied, recordId: same[0].recordId, duplicate: true });
  });

  test('first recharges of 50 different users at once (one key text for all) all apply', { timeout: 120_000 }, async () => {
    // Regression: a locking read of the missing key used to take a gap lock
    // shared by all users, and concurrent INSERTs then deadlocked (INTERNAL).
    const people = await Promise.all(Array.from({ length: 50 }, () => f.user()));
    const results = await Promise.allSettled(people.map((u, i) => u.client.recharge(100 + i, 'first-topup')));
    assert.deepEqual(tally(results), { OK: 50 });
    for (const [i, r] of results.entries()) {
      const reply = (r as PromiseFulfilledResult<RechargeReply>).value;
      assert.equal(reply.duplicate, false);
      assert.equal(reply.balanceCents, 100 + i);
    }
    // And the second round, with records already in the index.
    const again = await Promise.allSettled(people.map((u, i) => u.client.recharge(1, `second-${i % 3}`)));
    assert.deepEqual(tally(again), { OK: 50 });
    for (const [i, u] of people.entries()) assert.equal(await u.client.balance(), 101 + i);
  });

  test('walking the record pages while new records keep arriving', { timeout: 120_000 }, async () => {
    const { client: me, userId } = await f.user();
    const helpers = await Promise.all(Array.from({ length: 3 }, () => f.client(me.token)));
    for (let i = 0; i < 60; i++) await helpers[i % 3].recharge(1 + (i % 5), `seed-${i}`);

    const existing = (await f.db.rows<{ id: number }>('SELECT id FROM account_records WHERE user_id = ? ORDER BY id DESC', [userId])).map((r) => Number(r.id));
    assert.equal(existing.length, 60);

    // Writers keep adding records during the whole walk.
    let walking = true;
    let added = 0;
    const writers = helpers.map(async (c, w) => {
      for (let i = 0; walking; i++) {
        await c.recharge(7, `during-${w}-${i}`);
        added++;
      }
    });

    const seen: number[] = [];
    const pages: number[] = [];
    let cursor = '';
    try {
      for (let n = 0; ; n++) {
        assert.ok(n < 100, 'the walk ends');
        const page = await me.accountRecords(cursor, 7);
        assert.ok(page.records.length <= 7);
        pages.push(page.records.length);
        for (const r of page.records) {
          seen.push(r.recordId);
          assert.equal(r.kind, RecordKind.RECHARGE);
        }
        if (page.nextCursor === '') break;
        assert.equal(page.records.length, 7, 'a page with a next cursor is full');
        cursor = page.nextCursor;
        await sleep(5); // let the writers in between pages
      }
    } finally {
      walking = false;
      await Promise.all(writers);
    }
    assert.ok(added > 0, 'records were added during the walk');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] < seen[i - 1], `ids strictly decreasing at ${i}: ${seen[i - 1]} then ${seen[i]}`);
    const seenSet = new Set(seen);
    for (const id of existing) assert.ok(seenSet.has(id), `record ${id} that existed when the walk began is returned`);
    const extra = seen.filter((id) => !existing.includes(id));
    assert.ok(extra.every((id) => id > existing[0]), 'anything else is newer than the walk start');
    assert.deepEqual(seen.slice(seen.length - existing.length), existing, 'the old records, in order, end the walk');
  });

  test('page edges: exact multiple, limit 0 means 20, limit 101 and malformed cursors are BAD_REQUEST', { timeout: 60_000 }, async () => {
    const { client: me } = await f.user();
    for (let i = 0; i < 21; i++) await me.recharge(1, `edge-${i}`);

    // 21 records, limit 0 -> 20 and a cursor; the next page has the last one and no cursor.
    const p1 = await me.accountRecords('', 0);
    assert.equal(p1.records.length, 20);
    assert.notEqual(p1.nextCursor, '');
    const p2 = await me.accountRecords(p1.nextCursor, 0);
    assert.equal(p2.records.length, 1);
    assert.equal(p2.nextCursor, '');
    assert.equal(p2.records[0].balanceAfterCents, 1, 'oldest record last');

    // A count that is an exact multiple of the limit: the last full page has no cursor.
    const { client: seven } = await f.user();
    for (let i = 0; i < 14; i++) await seven.recharge(1, `m-${i}`);
    const q1 = await seven.accountRecords('', 7);
    assert.equal(q1.records.length, 7);
    assert.notEqual(q1.nextCursor, '');
    const q2 = await seven.accountRecords(q1.nextCursor, 7);
    assert.equal(q2.records.length, 7);
    assert.equal(q2.nextCursor, '', 'empty exactly when no further item exists');
    assert.deepEqual(
      [...q1.records, ...q2.records].map((r) => r.balanceAfterCents),
      Array.from({ length: 14 }, (_, i) => 14 - i),
    );

    await rejectsWith(me.accountRecords('', 101), ErrorCode.BAD_REQUEST, 'limit 101');
    assert.equal((await me.accountRecords('', 100)).records.length, 21, 'limit 100 is allowed');
    for (const bad of ['garbage!', 'AAAA', p1.nextCursor + 'x', p1.nextCursor.slice(0, -1), '0', ' ' + p1.nextCursor]) {
      await rejectsWith(me.accountRecords(bad, 5), ErrorCode.BAD_REQUEST, `cursor ${JSON.stringify(bad)}`);
    }
  });

  test('recharge bounds and idempotency key lengths', { timeout: 30_000 }, async () => {
    const { client: me, userId } = await f.user();
    await rejectsWith(me.recharge(0, 'b-0'), ErrorCode.BAD_REQUEST, 'amount 0');
    await rejectsWith(me.recharge(-5, 'b-neg'), ErrorCode.BAD_REQUEST, 'negative amount');
    await rejectsWith(me.recharge(1_000_001, 'b-big'), ErrorCode.BAD_REQUEST, 'amount 1_000_001');
    await rejectsWith(me.recharge(10, 'k'.repeat(65)), ErrorCode.BAD_REQUEST, '65-byte key');
    await rejectsWith(me.recharge(10, 'é'.repeat(33)), ErrorCode.BAD_REQUEST, '66-byte key of 33 characters');
    await rejectsWith(me.recharge(10, ''), ErrorCode.BAD_REQUEST, 'empty key');
    assert.equal(await me.balance(), 0, 'refused recharges had no effect');
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ?', [userId]), 0);

    assert.equal((await me.recharge(1_000_000, 'k'.repeat(64))).balanceCents, 1_000_000, 'max amount, 64-byte key');
    assert.equal((await me.recharge(1, 'é'.repeat(32))).balanceCents, 1_000_001, '64-byte key of 32 characters');
    // Keys are compared as bytes: a different key of the same length is a new recharge.
    assert.equal((await me.recharge(1, 'e'.repeat(64))).duplicate, false);
    assert.equal((await me.recharge(1, 'E'.repeat(64))).duplicate, false, 'keys are case-sensitive');
    assert.equal(await me.balance(), 1_000_003);
  });
});

// ---------------------------------------------------------------------------

describe('verification code rules', () => {
  const f = fixture({ env: { BIKE_CODE_TTL_SECONDS: '2', BIKE_CODE_RESEND_SECONDS: '2', BIKE_CODE_MAX_ATTEMPTS: '3', BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '0' } });

  test('RequestCodeReply carries the settings and a six-digit debug code', async () => {
    const c = await f.client();
    const sent = await c.requestCode(uniquePhone());
    assert.equal(sent.ttlSeconds, 2);
    assert.equal(sent.resendAfterSeconds, 2);
    assert.match(sent.debugCode, /^[0-9]{6}$/);
  });

  test('a code expires after its TTL', { timeout: 30_000 }, async () => {
    const c = await f.client();
    const phone = uniquePhone();
    const { debugCode } = await c.requestCode(phone);
    await sleep(2600);
    await rejectsWith(c.login(phone, debugCode), ErrorCode.CODE_INVALID, 'expired code');
    // A new code after the resend window works.
    const again = await c.requestCode(phone);
    assert.equal((await c.login(phone, again.debugCode)).newUser, true);
  });

  test('resend window: a second code too soon is RATE_LIMITED; the next one replaces the first', { timeout: 30_000 }, async () => {
    const c = await f.client();
    const phone = uniquePhone();
    const first = await c.requestCode(phone);
    const limited = await rejectsWith(c.requestCode(phone), ErrorCode.RATE_LIMITED, 'second RequestCode within the window');
    assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 2000, `retry_after_ms ${limited.retryAfterMs}`);
    await sleep(limited.retryAfterMs + 50);
    const second = await c.requestCode(phone);
    if (second.debugCode !== first.debugCode) {
      await rejectsWith(c.login(phone, first.debugCode), ErrorCode.CODE_INVALID, 'the replaced code');
    }
    await c.login(phone, second.debugCode);
    // Used or not, the window counts from the last send.
    const soon = await rejectsWith(c.requestCode(phone), ErrorCode.RATE_LIMITED, 'RequestCode right after a used code');
    assert.ok(soon.retryAfterMs > 0 && soon.retryAfterMs <= 2000);
  });

  test('three wrong tries void the code; two do not', { timeout: 30_000 }, async () => {
    const c = await f.client();
    const phone = uniquePhone();
    const { debugCode } = await c.requestCode(phone);
    for (let i = 1; i <= 3; i++) await rejectsWith(c.login(phone, otherCode(debugCode, i)), ErrorCode.CODE_INVALID, `wrong try ${i}`);
    await rejectsWith(c.login(phone, debugCode), ErrorCode.CODE_INVALID, 'the right code after three wrong tries');

    const phone2 = uniquePhone();
    const sent2 = await c.requestCode(phone2);
    for (let i = 1; i <= 2; i++) await rejectsWith(c.login(phone2, otherCode(sent2.debugCode, i)), ErrorCode.CODE_INVALID);
    assert.equal((await c.login(phone2, sent2.debugCode)).newUser, true, 'two wrong tries leave the code valid');
  });

  test('a code is single-use', { timeout: 30_000 }, async () => {
    const c = await f.client();
    const phone = uniquePhone();
    const { debugCode } = await c.requestCode(phone);
    await c.login(phone, debugCode);
    await rejectsWith(c.login(phone, debugCode), ErrorCode.CODE_INVALID, 'same connection');
    const other = await f.client();
    await rejectsWith(other.login(phone, debugCode), ErrorCode.CODE_INVALID, 'another connection');
  });

  test('bad phone numbers and malformed codes are BAD_REQUEST (and cost no attempt)', { timeout: 30_000 }, async () => {
    const c = await f.client();
    for (const phone of ['', '12345', '+0123456789', '0123456789', 'abcdefghij', '+1 5551234567', '+1234567890123456', '++15551234567', '15551234567\n']) {
      await rejectsWith(c.requestCode(phone), ErrorCode.BAD_REQUEST, `RequestCode ${JSON.stringify(phone)}`);
      await rejectsWith(c.login(phone, '123456'), ErrorCode.BAD_REQUEST, `Login ${JSON.stringify(phone)}`);
    }
    const phone = uniquePhone();
    const { debugCode } = await c.requestCode(phone);
    for (const code of ['', '12345', '1234567', '12a456', ' 12345', '12345 ', '١٢٣٤٥٦', '+12345', '-12345']) {
      await rejectsWith(c.login(phone, code), ErrorCode.BAD_REQUEST, `code ${JSON.stringify(code)}`);
    }
    // Nine refused logins, but max attempts is 3: validation comes before the code check.
    assert.equal((await c.login(phone, debugCode)).newUser, true);
  });
});

// ---------------------------------------------------------------------------

describe('abuse limits', () => {
  const f = fixture({ env: { BIKE_CODE_REQUESTS_PER_ADDRESS_PER_MINUTE: '5', BIKE_LOGIN_FAILURES_PER_PHONE_PER_HOUR: '3' } });

  test('more than 5 successful RequestCodes from one address within a minute are RATE_LIMITED', { timeout: 60_000 }, async () => {
    // A loopback address of its own: the counter is per remote IP in the shared Redis.
    const address = uniqueLoopback();
    for (let i = 0; i < 5; i++) {
      const r = await rawRequest(f.server.port, address, 'RequestCode', { phone: uniquePhone() });
      assert.ok(r.ok, `RequestCode ${i + 1} from ${address}: ${r.ok ? '' : ErrorCode[r.error.code]}`);
    }
    const sixth = await rawRequest(f.server.port, address, 'RequestCode', { phone: uniquePhone() });
    assert.ok(!sixth.ok, 'the sixth is refused');
    assert.equal(ErrorCode[sixth.error.code], 'RATE_LIMITED');
    assert.ok(sixth.error.retryAfterMs > 0 && sixth.error.retryAfterMs <= 60_000, `retry_after_ms ${sixth.error.retryAfterMs}`);
    // A refused request is not counted, and the limit is per address: another one is unaffected.
    const other = await rawRequest(f.server.port, uniqueLoopback(), 'RequestCode', { phone: uniquePhone() });
    assert.ok(other.ok, 'another address may still ask');
    // Bad requests are refused before the limit is looked at.
    const bad = await rawRequest(f.server.port, address, 'RequestCode', { phone: 'nope' });
    assert.ok(!bad.ok);
    assert.equal(ErrorCode[bad.error.code], 'BAD_REQUEST');
  });

  test('after 3 CODE_INVALID answers a phone gets RATE_LIMITED even with a fresh right code', { timeout: 60_000 }, async () => {
    const c = await f.client();
    // Codes are asked for from addresses of their own, out of reach of the per-address limit.
    const requestCode = async (phone: string) => {
      const r = await rawRequest(f.server.port, uniqueLoopback(), 'RequestCode', { phone });
      assert.ok(r.ok, `RequestCode: ${r.ok ? '' : r.error.message}`);
      return codec<RequestCodeReply>('RequestCodeReply').decode(r.body);
    };
    const phone = uniquePhone();
    const { debugCode } = await requestCode(phone);
    for (let i = 1; i <= 3; i++) await rejectsWith(c.login(phone, otherCode(debugCode, i)), ErrorCode.CODE_INVALID, `wrong try ${i}`);
    const fresh = await requestCode(phone);
    const limited = await rejectsWith(c.login(phone, fresh.debugCode), ErrorCode.RATE_LIMITED, 'right code after 3 failures');
    assert.ok(limited.retryAfterMs > 0 && limited.retryAfterMs <= 3_600_000, `retry_after_ms ${limited.retryAfterMs}`);
    await rejectsWith(c.login(phone, otherCode(fresh.debugCode)), ErrorCode.RATE_LIMITED, 'a wrong code too');
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM users WHERE phone = ?', [phone]), 0, 'no user was created');

    // Another phone is unaffected.
    const phone2 = uniquePhone();
    const sent2 = await requestCode(phone2);
    assert.equal((await c.login(phone2, sent2.debugCode)).newUser, true);
  });
});

// ---------------------------------------------------------------------------

describe('stores unreachable, then back', () => {
  const redisTarget = new URL(REDIS_URL);
  const mysqlTarget = new URL(mysqlUrlFor('x'));
  const redisProxy = new TcpProxy(redisTarget.hostname, Number(redisTarget.port || 6379));
  const mysqlProxy = new TcpProxy(mysqlTarget.hostname, Number(mysqlTarget.port || 3306));
  const f = fixture(async () => {
    const database = testDatabaseName();
    const redisPort = await redisProxy.listen();
    const mysqlPort = await mysqlProxy.listen();
    const mysqlUrl = new URL(mysqlUrlFor(database));
    mysqlUrl.host = `127.0.0.1:${mysqlPort}`;
    const redisUrl = new URL(REDIS_URL);
    redisUrl.host = `127.0.0.1:${redisPort}`;
    return {
      database,
      env: { BIKE_REDIS_URL: redisUrl.toString(), BIKE_MYSQL_URL: mysqlUrl.toString(), BIKE_STORE_TIMEOUT_MS: '1000' },
    };
  });
  f.extraCleanup.push(
    () => redisProxy.close(),
    () => mysqlProxy.close(),
  );
  afterEach(() => {
    redisProxy.restore();
    mysqlProxy.restore();
  });

  /** Runs `call` and asserts SERVICE_UNAVAILABLE within 5 s. */
  async function unavailableSoon(what: string, call: () => Promise<unknown>): Promise<void> {
    const t = Date.now();
    const err = await rejectsWith(call(), ErrorCode.SERVICE_UNAVAILABLE, what);
    const took = Date.now() - t;
    assert.ok(took < 5000, `${what}: answered after ${took} ms`);
    assert.ok(err.retryAfterMs >= 0);
  }

  test('Redis cut: SERVICE_UNAVAILABLE, /readyz 503, no worker dies; back by itself', { timeout: 120_000 }, async () => {
    const { client: me } = await f.user();
    await me.recharge(300, 'redis-1');
    const pids = workerPids(f.server);
    assert.equal(pids.length, 2);
    assert.equal(await readyStatus(f.server), 200);

    redisProxy.cut();
    // Several connections, so both workers are exercised.
    const others = await Promise.all(Array.from({ length: 4 }, () => f.client(me.token)));
    for (const c of [me, ...others]) {
      await unavailableSoon('RequestCode', () => c.requestCode(uniquePhone()));
      await unavailableSoon('GetBalance', () => c.balance());
      await unavailableSoon('Login', () => c.login(uniquePhone(), '123456'));
    }
    await eventually('/readyz turns 503', 15_000, async () => (await readyStatus(f.server)) === 503);
    assert.deepEqual(workerPids(f.server), pids, 'same worker processes');

    redisProxy.restore();
    await eventually('GetBalance works again', 20_000, async () => (await me.balance().catch(() => -1)) === 300);
    await eventually('/readyz turns 200', 20_000, async () => (await readyStatus(f.server)) === 200);
    for (const c of others) {
      await eventually('every connection works again', 20_000, async () => (await c.balance().catch(() => -1)) === 300);
    }
    const u = await f.user(); // code and login work again
    assert.equal(await u.client.balance(), 0);
    assert.deepEqual(workerPids(f.server), pids, 'same worker processes');
  });

  test('MySQL cut: SERVICE_UNAVAILABLE, /readyz 503, no worker dies; back by itself, retries apply once', { timeout: 120_000 }, async () => {
    const { client: me, userId } = await f.user();
    await me.recharge(300, 'mysql-1');
    const pids = workerPids(f.server);
    assert.equal(pids.length, 2);
    assert.equal(await readyStatus(f.server), 200);
    const others = await Promise.all(Array.from({ length: 4 }, () => f.client(me.token)));
    const pendingPhone = uniquePhone();
    const { debugCode } = await me.requestCode(pendingPhone);

    mysqlProxy.cut();
    for (const c of [me, ...others]) {
      await unavailableSoon('GetBalance', () => c.balance());
      await unavailableSoon('Recharge', () => c.recharge(50, 'mysql-2'));
      await unavailableSoon('ListAccountRecords', () => c.accountRecords());
    }
    // Login cannot finish without the database; the code is given back, so the same call may be retried.
    const loginClient = await f.client();
    await unavailableSoon('Login', () => loginClient.login(pendingPhone, debugCode));
    // Redis still works meanwhile.
    assert.match((await others[0].requestCode(uniquePhone())).debugCode, /^[0-9]{6}$/);
    await eventually('/readyz turns 503', 15_000, async () => (await readyStatus(f.server)) === 503);
    assert.deepEqual(workerPids(f.server), pids, 'same worker processes');

    mysqlProxy.restore();
    await eventually('GetBalance works again', 20_000, async () => (await me.balance().catch(() => -1)) === 300);
    await eventually('/readyz turns 200', 20_000, async () => (await readyStatus(f.server)) === 200);
    // Retrying the refused recharge as is applies it once.
    const retried = await Promise.all(others.map((c) => c.recharge(50, 'mysql-2')));
    assert.equal(retried.filter((r) => !r.duplicate).length, 1);
    assert.ok(retried.every((r) => r.balanceCents === 350 && r.recordId === retried[0].recordId));
    for (const c of others) assert.equal(await c.balance(), 350);
    assert.equal(await count(f.db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ?', [userId]), 2);
    // The refused login, retried as is, succeeds.
    assert.equal((await loginClient.login(pendingPhone, debugCode)).newUser, true);
    assert.deepEqual(workerPids(f.server), pids, 'same worker processes');
  });
});
