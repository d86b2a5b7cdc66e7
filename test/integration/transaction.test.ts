// Db.transaction against the real MariaDB: commit on return, rollback on any
// throw, the connection always back in the pool, and unreachable stores
// turned into SERVICE_UNAVAILABLE.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../../src/stores/migrate.js';
import { Db } from '../../src/stores/mysql.js';
import { ServiceUnavailableError } from '../../src/errors.js';
import { upsertUserForLogin, balanceOf, lockBalance, setBalance } from '../../src/dao/users.js';
import { dropDatabase, openDb } from '../helpers/db.js';
import { mysqlUrlFor, testDatabaseName } from '../helpers/server.js';

const database = testDatabaseName();
let db: Db;

before(async () => {
  await migrate(mysqlUrlFor(database));
  db = openDb(database);
});
after(async () => {
  await db.close();
  await dropDatabase(database);
});

test('migrations are idempotent: a second run applies nothing', async () => {
  const again = await migrate(mysqlUrlFor(database));
  assert.deepEqual(again.applied, []);
});

test('several migrators at once (replicas starting together) apply each version once', async () => {
  const name = testDatabaseName();
  try {
    const results = await Promise.all([1, 2, 3, 4].map(() => migrate(mysqlUrlFor(name))));
    assert.equal(results.filter((r) => r.applied.length > 0).length, 1);
  } finally {
    await dropDatabase(name);
  }
});

test('commit when the work returns', async () => {
  const user = await upsertUserForLogin(db, '+15550000001', Date.now());
  await db.transaction((tx) => setBalance(tx, user.userId, 700, Date.now()));
  assert.equal(await balanceOf(db, user.userId), 700);
});

test('rollback when the work throws, and the error reaches the caller', async () => {
  const user = await upsertUserForLogin(db, '+15550000002', Date.now());
  const boom = new Error('boom');
  await assert.rejects(
    db.transaction(async (tx) => {
      await setBalance(tx, user.userId, 999, Date.now());
      throw boom;
    }),
    (err) => err === boom,
  );
  assert.equal(await balanceOf(db, user.userId), 0);
});

test('transactions run with autocommit off (no BEGIN) and never leave one open; single statements autocommit', async () => {
  const flag = async (ex: { rows<T>(sql: string, params: []): Promise<T[]> }) => Number((await ex.rows<{ a: number }>('SELECT @@autocommit AS a', []))[0].a);
  assert.equal(await db.transaction((tx) => flag(tx)), 0);
  assert.equal(await flag(db), 1);
  const user = await upsertUserForLogin(db, '+15550000006', Date.now());
  const openTrx = (thread: number) => db.rows<{ n: number }>('SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ?', [thread]);
  // After a commit and after a rollback, the connection's transaction is over.
  const committed = await db.transaction(async (tx) => {
    await setBalance(tx, user.userId, 5, Date.now());
    return Number((await tx.rows<{ id: number }>('SELECT CONNECTION_ID() AS id', []))[0].id);
  });
  assert.equal(Number((await openTrx(committed))[0].n), 0, 'no transaction left open after COMMIT');
  let rolledBack = 0;
  await assert.rejects(
    db.transaction(async (tx) => {
      await setBalance(tx, user.userId, 6, Date.now());
      rolledBack = Number((await tx.rows<{ id: number }>('SELECT CONNECTION_ID() AS id', []))[0].id);
      throw new Error('undo');
    }),
  );
  assert.equal(Number((await openTrx(rolledBack))[0].n), 0, 'no transaction left open after ROLLBACK');
  assert.equal(await balanceOf(db, user.userId), 5);
});

test('connections always go back to the pool (more failing transactions than pool slots)', async () => {
  const user = await upsertUserForLogin(db, '+15550000003', Date.now());
  for (let i = 0; i < 20; i++) {
    await assert.rejects(db.transaction(async (tx) => {
      await lockBalance(tx, user.userId);
      throw new Error('fail');
    }));
  }
  assert.equal(db.poolStats().inUse, 0);
  assert.equal(await db.transaction((tx) => lockBalance(tx, user.userId)), 0);
});

test('a row lock serializes concurrent read-modify-write transactions', async () => {
  const user = await upsertUserForLogin(db, '+15550000004', Date.now());
  await Promise.all(
    Array.from({ length: 40 }, () =>
      db.transaction(async (tx) => {
        const b = await lockBalance(tx, user.userId);
        await setBalance(tx, user.userId, b + 1, Date.now());
      }),
    ),
  );
  assert.equal(await balanceOf(db, user.userId), 40);
});

test('the login upsert under 50 concurrent first logins creates one user', async () => {
  const results = await Promise.all(Array.from({ length: 50 }, () => upsertUserForLogin(db, '+15550000005', Date.now())));
  assert.equal(results.filter((r) => r.newUser).length, 1);
  assert.equal(new Set(results.map((r) => r.userId)).size, 1);
  const rows = await db.rows<{ n: number }>('SELECT COUNT(*) AS n FROM users WHERE phone = ?', ['+15550000005']);
  assert.equal(Number(rows[0].n), 1);
});

test('an unreachable database is SERVICE_UNAVAILABLE, within the store timeout', async () => {
  const options = { url: 'mysql://root@127.0.0.1:1/nothing', poolSize: 1, timeoutMs: 1000 };
  const dead = new Db(options);
  try {
    await assert.rejects(dead.rows('SELECT 1', []), ServiceUnavailableError);
    await assert.rejects(dead.transaction(async () => 1), ServiceUnavailableError);
    assert.equal(await dead.ping(), false);
  } finally {
    await dead.close();
  }
});
