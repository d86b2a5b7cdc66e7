// End-to-end tests of the rides capability (PROTOCOL.md sections 4-5):
// unlock races and rules, fares, ending rides (idempotent), nearby search,
// ride history pages, a randomized mixed workload checked against a model
// and by the `bikeshare audit` command, and `bikeshare bikes seed`.
// Every test talks to real server processes; the invariants are audited
// after every test.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BikeClient, ErrorCode, ServerError } from '../../src/client/client.js';
import { RecordKind, RideStatus, type RechargeReply, type RideEnded, type RideStarted } from '../../src/protocol/messages.js';
import type { Db } from '../../src/stores/mysql.js';
import { insertBike, setBikeStatus } from '../../src/dao/bikes.js';
import { BikeService } from '../../src/services/bikes.js';
import { systemClock } from '../../src/clock.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { auditDatabase, count, dropDatabase, openDb } from '../helpers/db.js';
import { plain, rejectsWith, tally } from '../helpers/outcomes.js';
import { prng } from '../helpers/prng.js';
import { connect, loggedIn } from '../helpers/users.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The fare table of this file's server: short periods, so real rides of a few seconds cross them.
const FARE = { baseCents: 150, baseSeconds: 1, stepCents: 100, stepSeconds: 1 };
const expectedFare = (d: number) => FARE.baseCents + FARE.stepCents * Math.ceil(Math.max(0, d - FARE.baseSeconds) / FARE.stepSeconds);

// Haversine on a sphere of radius 6371008.8 m, written out independently of the server.
const R = 6371008.8;
function distanceM(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const rad = Math.PI / 180;
  const s1 = Math.sin(((lat2 - lat1) * rad) / 2);
  const s2 = Math.sin(((lng2 - lng1) * rad) / 2);
  const a = s1 * s1 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * s2 * s2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** A random point of the world away from the poles and the antimeridian, so each test has a map area of its own. */
const randomCenter = () => ({ lat: randomInt(-50_000, 50_000) / 1000, lng: randomInt(-150_000, 150_000) / 1000 });



/** Where a user's balance lives: `accounts.user_id` where the schema has that table, else `users.id`. */
async function balanceLocation(db: Db): Promise<{ table: string; key: string }> {
  const hasTable = await count(db, "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'accounts'", []);
  return hasTable ? { table: 'accounts', key: 'user_id' } : { table: 'users', key: 'id' };
}

function runCli(args: string[], mysqlUrl: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', ...args],
      {
        cwd: ROOT,
        timeout: 60_000,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', BIKE_MYSQL_URL: mysqlUrl, BIKE_LOG_LEVEL: 'warn' },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface User {
  client: BikeClient;
  userId: number;
  token: string;
}

// ---------------------------------------------------------------------------

describe('rides', () => {
  let server: TestServer;
  let db: Db;
  const clients: BikeClient[] = [];

  before(async () => {
    server = await startServer({
      workers: 2,
      env: {
        BIKE_FARE_BASE_SECONDS: String(FARE.baseSeconds),
        BIKE_FARE_STEP_SECONDS: String(FARE.stepSeconds),
        BIKE_FARE_BASE_CENTS: String(FARE.baseCents),
        BIKE_FARE_STEP_CENTS: String(FARE.stepCents),
        BIKE_MIN_UNLOCK_BALANCE_CENTS: '100',
      },
    });
    db = openDb(server.database);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    const { problems } = await auditDatabase(server.database);
    assert.deepEqual(problems, [], 'audit after the test');
  });
  after(async () => {
    for (const c of clients.splice(0)) c.close();
    await db?.close();
    if (server) {
      await server.stop();
      await dropDatabase(server.database);
    }
  });

  async function client(token = ''): Promise<BikeClient> {
    const c = await connect(server.port, token ? { token } : {});
    clients.push(c);
    return c;
  }

  /** `n` new users, each on a connection of its own, each recharged with `cents` (0 = none). */
  async function users(n: number, cents: number): Promise<User[]> {
    const out: User[] = [];
    for (let i = 0; i < n; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, n - i) }, async () => {
          const u = await loggedIn(server.port);
          clients.push(u.client);
          if (cents > 0) await u.client.recharge(cents, 'initial');
          return { client: u.client, userId: u.userId, token: u.client.token };
        }),
      );
      out.push(...batch);
    }
    return out;
  }

  async function bike(lat: number, lng: number): Promise<number> {
    return insertBike(db, lat, lng, Date.now());
  }

  async function bikeRow(id: number): Promise<{ status: string; lat: number; lng: number }> {
    const [row] = await db.rows<{ status: string; lat: number; lng: number }>('SELECT status, lat, lng FROM bikes WHERE id = ?', [id]);
    return { status: row.status, lat: Number(row.lat), lng: Number(row.lng) };
  }

  /** FindNearbyBikes computed by brute force over every available bike in the database. */
  async function bruteForceNearby(lat: number, lng: number, radiusM: number, limit: number) {
    const rows = await db.rows<{ id: number; lat: number; lng: number }>("SELECT id, lat, lng FROM bikes WHERE status = 'available'", []);
    return rows
      .map((r) => ({ bikeId: Number(r.id), lat: Number(r.lat), lng: Number(r.lng), exact: distanceM(lat, lng, Number(r.lat), Number(r.lng)) }))
      .filter((b) => b.exact <= radiusM)
      .map((b) => ({ bikeId: b.bikeId, lat: b.lat, lng: b.lng, distanceM: Math.round(b.exact) }))
      .sort((a, b) => a.distanceM - b.distanceM || a.bikeId - b.bikeId)
      .slice(0, limit === 0 ? 20 : limit);
  }

  async function checkNearby(c: BikeClient, lat: number, lng: number, radiusM: number, limit: number) {
    const got = (await c.nearbyBikes({ lat, lng, radiusM, limit })).bikes.map(plain);
    const want = await bruteForceNearby(lat, lng, radiusM, limit);
    assert.deepEqual(got, want, `FindNearbyBikes(${lat}, ${lng}, ${radiusM}, ${limit})`);
    return got;
  }

  test('200 users scan one bike at the same moment: exactly one ride starts', { timeout: 240_000 }, async () => {
    const riders = await users(200, 500);
    const { lat, lng } = randomCenter();
    const bikeId = await bike(lat, lng);
    const results = await Promise.allSettled(riders.map((u) => u.client.unlock(bikeId)));
    assert.deepEqual(tally(results), { OK: 1, BIKE_UNAVAILABLE: 199 });
    const winnerIndex = results.findIndex((r) => r.status === 'fulfilled');
    const started = (results[winnerIndex] as PromiseFulfilledResult<RideStarted>).value;
    assert.equal(started.bikeId, bikeId);
    assert.equal(await count(db, "SELECT COUNT(*) AS n FROM rides WHERE bike_id = ? AND status = 'active'", [bikeId]), 1);
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM rides WHERE bike_id = ?', [bikeId]), 1, 'no other ride was ever written');
    const [ride] = await db.rows<{ id: number; user_id: number }>('SELECT id, user_id FROM rides WHERE bike_id = ?', [bikeId]);
    assert.equal(Number(ride.id), started.rideId);
    assert.equal(Number(ride.user_id), riders[winnerIndex].userId);
    assert.equal((await bikeRow(bikeId)).status, 'in_use');
    // The losers paid nothing and have no ride.
    for (const [i, u] of riders.entries()) {
      if (i === winnerIndex) continue;
      if (i % 20 === 0) assert.equal((await u.client.rides()).rides.length, 0);
    }
    const ended = await riders[winnerIndex].client.endRide(started.rideId, lat, lng);
    assert.equal(ended.balanceCents, 500 - ended.fareCents);
  });

  test('one user scans 10 bikes at once: exactly one ride starts, the other bikes stay available', { timeout: 60_000 }, async () => {
    const [me] = await users(1, 1000);
    const conns = await Promise.all(Array.from({ length: 10 }, () => client(me.token)));
    const { lat, lng } = randomCenter();
    const bikes: number[] = [];
    for (let i = 0; i < 10; i++) bikes.push(await bike(lat + i * 0.0001, lng));
    const results = await Promise.allSettled(bikes.map((id, i) => conns[i].unlock(id)));
    const counts = tally(results);
    assert.equal(counts.OK, 1, JSON.stringify(counts));
    for (const code of Object.keys(counts)) assert.ok(['OK', 'RIDE_ALREADY_ACTIVE', 'BIKE_UNAVAILABLE'].includes(code), `unexpected ${code}`);
    const started = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<RideStarted>).value;
    assert.equal(await count(db, "SELECT COUNT(*) AS n FROM rides WHERE user_id = ? AND status = 'active'", [me.userId]), 1);
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM rides WHERE user_id = ?', [me.userId]), 1);
    for (const id of bikes) assert.equal((await bikeRow(id)).status, id === started.bikeId ? 'in_use' : 'available', `bike ${id}`);
    // The other nine are still on the map.
    const listed = new Set((await me.client.nearbyBikes({ lat, lng, radiusM: 500, limit: 100 })).bikes.map((b) => b.bikeId));
    for (const id of bikes) assert.equal(listed.has(id), id !== started.bikeId, `bike ${id} listed`);
    await me.client.endRide(started.rideId, lat, lng);
  });

  test('ten copies of one unlock at once (a client retrying) all get the same RideStarted', { timeout: 60_000 }, async () => {
    const [me] = await users(1, 1000);
    const conns = await Promise.all(Array.from({ length: 10 }, () => client(me.token)));
    const { lat, lng } = randomCenter();
    const bikeId = await bike(lat, lng);
    const results = await Promise.allSettled(conns.map((c) => c.unlock(bikeId)));
    assert.deepEqual(tally(results), { OK: 10 });
    const answers = results.map((r) => JSON.stringify(plain((r as PromiseFulfilledResult<RideStarted>).value)));
    assert.equal(new Set(answers).size, 1, `one answer: ${[...new Set(answers)].join(' / ')}`);
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM rides WHERE user_id = ?', [me.userId]), 1);
    const started = JSON.parse(answers[0]) as RideStarted;
    const ends = await Promise.all(conns.map((c) => c.endRide(started.rideId, lat, lng)));
    assert.equal(new Set(ends.map((e) => JSON.stringify(plain(e)))).size, 1, 'ten copies of one EndRide: one answer');
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM account_records WHERE ride_id = ?', [started.rideId]), 1);
    assert.equal(await me.client.balance(), 1000 - ends[0].fareCents);
  });

  test('unlock rules, in the order of the contract', { timeout: 60_000 }, async () => {
    const [a, b] = await users(2, 0);
    await a.client.recharge(500, 'a-1');
    await b.client.recharge(99, 'b-1');
    const { lat, lng } = randomCenter();
    const b1 = await bike(lat, lng);
    const b2 = await bike(lat + 0.0002, lng);
    const b3 = await bike(lat, lng + 0.0002);
    const unknown = 999_999_999;

    await rejectsWith(a.client.unlock(unknown), ErrorCode.BIKE_NOT_FOUND, 'unknown bike');
    await rejectsWith(a.client.unlock(0), ErrorCode.BAD_REQUEST, 'bike id 0');

    const s1 = await a.client.unlock(b1);
    assert.equal(s1.bikeId, b1);
    assert.ok(s1.rideId > 0 && s1.startedAtMs > 0);
    // A retry of the own ride's bike is the same RideStarted, on any connection.
    assert.deepEqual(plain(await a.client.unlock(b1)), plain(s1));
    assert.deepEqual(plain(await (await client(a.token)).unlock(b1)), plain(s1));

    assert.ok(await setBikeStatus(db, b3, 'out_of_service', Date.now()));
    assert.equal(await setBikeStatus(db, b1, 'out_of_service', Date.now()), false, 'a bike in use is never changed by the operator');

    await rejectsWith(a.client.unlock(b2), ErrorCode.RIDE_ALREADY_ACTIVE, 'another bike while riding');
    await rejectsWith(a.client.unlock(b3), ErrorCode.RIDE_ALREADY_ACTIVE, 'an out-of-service bike while riding (ride check comes first)');
    await rejectsWith(a.client.unlock(unknown), ErrorCode.BIKE_NOT_FOUND, 'unknown bike while riding (bike check comes first)');

    // b has 99 cents: the balance check comes before availability.
    await rejectsWith(b.client.unlock(b1), ErrorCode.INSUFFICIENT_BALANCE, 'bike in use, balance 99');
    await rejectsWith(b.client.unlock(b3), ErrorCode.INSUFFICIENT_BALANCE, 'out of service, balance 99');
    await rejectsWith(b.client.unlock(b2), ErrorCode.INSUFFICIENT_BALANCE, 'available, balance 99');
    await rejectsWith(b.client.unlock(unknown), ErrorCode.BIKE_NOT_FOUND, 'unknown, balance 99');
    await b.client.recharge(1, 'b-2'); // exactly the minimum
    await rejectsWith(b.client.unlock(b1), ErrorCode.BIKE_UNAVAILABLE, 'in use by someone else');
    await rejectsWith(b.client.unlock(b3), ErrorCode.BIKE_UNAVAILABLE, 'out of service');
    const s2 = await b.client.unlock(b2);
    assert.equal(s2.bikeId, b2);
    assert.notEqual(s2.rideId, s1.rideId);

    // Out of service: never listed, whatever the query.
    for (const radiusM of [1, 50, 5000]) {
      const ids = (await b.client.nearbyBikes({ lat, lng: lng + 0.0002, radiusM, limit: 100 })).bikes.map((x) => x.bikeId);
      assert.ok(!ids.includes(b3), `out-of-service bike listed within ${radiusM} m`);
      assert.ok(!ids.includes(b1) && !ids.includes(b2), 'bikes in use are not listed');
    }
    // Back in service: listed and unlockable again.
    assert.ok(await setBikeStatus(db, b3, 'available', Date.now()));
    const near = (await b.client.nearbyBikes({ lat, lng: lng + 0.0002, radiusM: 1, limit: 100 })).bikes;
    assert.ok(near.some((x) => x.bikeId === b3 && x.distanceM === 0));

    await a.client.endRide(s1.rideId, lat, lng);
    await b.client.endRide(s2.rideId, lat, lng);
    const s3 = await a.client.unlock(b3);
    await a.client.endRide(s3.rideId, lat, lng);
  });

  test('fares follow the configured table for the duration the server measured', { timeout: 60_000 }, async () => {
    const waits = [0, 1100, 2300, 4300];
    const riders = await users(waits.length, 2000);
    const { lat, lng } = randomCenter();
    const bikes = await Promise.all(waits.map((_, i) => bike(lat + i * 0.0001, lng)));
    const ends = await Promise.all(
      waits.map(async (wait, i) => {
        const started = await riders[i].client.unlock(bikes[i]);
        await sleep(wait);
        const ended = await riders[i].client.endRide(started.rideId, lat, lng);
        return { started, ended, wait };
      }),
    );
    const durations = new Set<number>();
    for (const [i, { started, ended, wait }] of ends.entries()) {
      const d = ended.durationSeconds;
      durations.add(d);
      // The server's interval contains ours, so its duration is at least the whole seconds we waited.
      assert.ok(d >= Math.floor(wait / 1000), `duration ${d} s after waiting ${wait} ms`);
      assert.equal(ended.rideId, started.rideId);
      assert.equal(ended.fareCents, expectedFare(d), `fare of a ${d} s ride`);
      assert.equal(ended.balanceCents, 2000 - ended.fareCents);
      const u = riders[i].client;
      assert.equal(await u.balance(), ended.balanceCents);
      const [rec] = (await u.accountRecords('', 1)).records;
      assert.equal(rec.kind, RecordKind.RIDE_FARE);
      assert.equal(rec.amountCents, -ended.fareCents);
      assert.equal(rec.balanceAfterCents, ended.balanceCents);
      assert.equal(rec.rideId, started.rideId);
      const [ride] = (await u.rides()).rides;
      assert.equal(ride.rideId, started.rideId);
      assert.equal(ride.status, RideStatus.FINISHED);
      assert.equal(ride.startedAtMs, started.startedAtMs);
      assert.equal(ride.durationSeconds, d);
      assert.equal(ride.fareCents, ended.fareCents);
      assert.equal(d, Math.floor((ride.endedAtMs - ride.startedAtMs) / 1000), 'duration = floor((end - start) / 1000)');
      const [row] = await db.rows<{ amount_cents: number; ride_id: number }>('SELECT amount_cents, ride_id FROM account_records WHERE ride_id = ?', [started.rideId]);
      assert.equal(Number(row.amount_cents), -ended.fareCents);
    }
    assert.ok(durations.size >= 3, `the rides cover several periods: ${[...durations]}`);
    assert.ok(Math.max(...durations) >= 4, 'a ride of several steps');
  });

  test('EndRide twice at once and again later: one charge, the same answer', { timeout: 60_000 }, async () => {
    const [me, other] = await users(2, 1000);
    const { lat, lng } = randomCenter();
    const bikeId = await bike(lat, lng);
    const started = await me.client.unlock(bikeId);
    await rejectsWith(other.client.endRide(started.rideId, lat, lng), ErrorCode.RIDE_NOT_FOUND, "another user's EndRide of an active ride");
    assert.equal(await count(db, "SELECT COUNT(*) AS n FROM rides WHERE id = ? AND status = 'active'", [started.rideId]), 1, 'still active');
    await rejectsWith(me.client.endRide(999_999_999, lat, lng), ErrorCode.RIDE_NOT_FOUND, 'no such ride');
    await rejectsWith(me.client.endRide(0, lat, lng), ErrorCode.BAD_REQUEST, 'ride id 0');
    await rejectsWith(me.client.endRide(started.rideId, 91, lng), ErrorCode.BAD_REQUEST, 'lat 91');
    await rejectsWith(me.client.endRide(started.rideId, lat, 180.5), ErrorCode.BAD_REQUEST, 'lng 180.5');

    const endLat = lat + 0.001;
    const endLng = lng - 0.001;
    const second = await client(me.token);
    const [e1, e2] = await Promise.all([me.client.endRide(started.rideId, endLat, endLng), second.endRide(started.rideId, endLat, endLng)]);
    assert.deepEqual(plain(e1), plain(e2));
    assert.equal(e1.rideId, started.rideId);
    assert.equal(e1.fareCents, expectedFare(e1.durationSeconds));
    assert.equal(e1.balanceCents, 1000 - e1.fareCents);

    // Later, from elsewhere: the first answer again; the new position is ignored, nothing is charged.
    await me.client.recharge(10, 'after-end');
    const e3 = await me.client.endRide(started.rideId, lat - 0.01, lng + 0.01);
    assert.deepEqual(plain(e3), plain(e1), 'balance_cents is the balance right after that fare');
    assert.equal(await me.client.balance(), 1000 - e1.fareCents + 10);
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM account_records WHERE ride_id = ?', [started.rideId]), 1, 'one RIDE_FARE record');
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ? AND kind = 2', [me.userId]), 1);
    await rejectsWith(other.client.endRide(started.rideId, lat, lng), ErrorCode.RIDE_NOT_FOUND, "another user's EndRide of a finished ride");

    // The bike is available again, where the ride ended.
    const row = await bikeRow(bikeId);
    assert.deepEqual(row, { status: 'available', lat: endLat, lng: endLng });
    const near = (await other.client.nearbyBikes({ lat: endLat, lng: endLng, radiusM: 5, limit: 10 })).bikes;
    assert.ok(near.some((b) => b.bikeId === bikeId && b.distanceM === 0 && b.lat === endLat && b.lng === endLng));
    const next = await other.client.unlock(bikeId);
    await other.client.endRide(next.rideId, endLat, endLng);
  });

  test('nearby bikes equal a brute-force haversine search over the database', { timeout: 120_000 }, async () => {
    const c = await client();
    const center = randomCenter();
    const ids = await new BikeService(db, systemClock).seed(300, center.lat, center.lng, 2500);
    assert.equal(ids.length, 300);
    const outOfService = ids.slice(0, 30);
    for (const id of outOfService) assert.ok(await setBikeStatus(db, id, 'out_of_service', Date.now()));
    const riders = await users(10, 500);
    const inUse = ids.slice(30, 40);
    const rides = await Promise.all(riders.map((u, i) => u.client.unlock(inUse[i])));

    const hidden = new Set([...outOfService, ...inUse]);
    const queries: [number, number, number, number][] = [
      [center.lat, center.lng, 500, 100],
      [center.lat, center.lng, 1500, 100],
      [center.lat, center.lng, 2500, 100], // more than 100 in reach: the limit cuts
      [center.lat, center.lng, 5000, 7],
      [center.lat, center.lng, 800, 0], // 0 means 20
      [center.lat + 0.01, center.lng - 0.01, 1200, 50],
      [center.lat, center.lng, 1, 100],
    ];
    let hiddenInReach = 0;
    for (const [lat, lng, radiusM, limit] of queries) {
      const got = await checkNearby(c, lat, lng, radiusM, limit);
      assert.ok(got.length <= (limit || 20));
      for (const b of got) assert.ok(!hidden.has(b.bikeId), `bike ${b.bikeId} is out of service or in use`);
      for (const b of got) assert.ok(b.distanceM <= radiusM);
      const rows = await db.rows<{ id: number; lat: number; lng: number }>(`SELECT id, lat, lng FROM bikes WHERE id IN (${[...hidden].join(',')})`, []);
      hiddenInReach += rows.filter((r) => distanceM(lat, lng, Number(r.lat), Number(r.lng)) <= radiusM).length;
    }
    assert.ok(hiddenInReach > 0, 'some hidden bikes were within reach of a query');
    const full = await c.nearbyBikes({ lat: center.lat, lng: center.lng, radiusM: 2500, limit: 100 });
    assert.equal(full.bikes.length, 100, 'limit honoured');
    const def = await c.nearbyBikes({ lat: center.lat, lng: center.lng, radiusM: 2500, limit: 0 });
    assert.equal(def.bikes.length, 20);

    // Near the antimeridian: the search wraps around longitude 180.
    const edge = { lat: 10, lng: 179.99 };
    await new BikeService(db, systemClock).seed(80, edge.lat, edge.lng, 3000);
    const wrapped = await checkNearby(c, edge.lat, edge.lng, 3000, 100);
    assert.ok(wrapped.some((b) => b.lng < 0) && wrapped.some((b) => b.lng > 0), 'bikes on both sides of the antimeridian');
    const fromWest = await checkNearby(c, edge.lat, -179.995, 2000, 100);
    assert.ok(fromWest.some((b) => b.lng > 0), 'found from the other side');
    await checkNearby(c, edge.lat, 180, 1500, 100);
    await checkNearby(c, edge.lat, -180, 1500, 100);

    for (const [what, q] of [
      ['lat 91', { lat: 91, lng: 0, radiusM: 100, limit: 10 }],
      ['lat -91', { lat: -91, lng: 0, radiusM: 100, limit: 10 }],
      ['lng 181', { lat: 0, lng: 181, radiusM: 100, limit: 10 }],
      ['lng -180.5', { lat: 0, lng: -180.5, radiusM: 100, limit: 10 }],
      ['lat NaN', { lat: Number.NaN, lng: 0, radiusM: 100, limit: 10 }],
      ['lng Infinity', { lat: 0, lng: Number.POSITIVE_INFINITY, radiusM: 100, limit: 10 }],
      ['radius 0', { lat: 0, lng: 0, radiusM: 0, limit: 10 }],
      ['radius 5001', { lat: 0, lng: 0, radiusM: 5001, limit: 10 }],
      ['limit 101', { lat: 0, lng: 0, radiusM: 100, limit: 101 }],
    ] as const) {
      await rejectsWith(c.nearbyBikes(q), ErrorCode.BAD_REQUEST, what);
    }

    await Promise.all(riders.map((u, i) => u.client.endRide(rides[i].rideId, center.lat, center.lng)));
  });

  test('ListRides: newest first, the active ride included, pages with a cursor', { timeout: 60_000 }, async () => {
    const [me, other] = await users(2, 5000);
    const { lat, lng } = randomCenter();
    const bikes = await Promise.all(Array.from({ length: 5 }, (_, i) => bike(lat + i * 0.0001, lng)));
    const startedIds: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await me.client.unlock(bikes[i]);
      startedIds.push(s.rideId);
      await me.client.endRide(s.rideId, lat, lng);
    }
    const active = await me.client.unlock(bikes[3]);
    startedIds.push(active.rideId);

    const all = await me.client.rides();
    assert.equal(all.nextCursor, '');
    assert.deepEqual(
      all.rides.map((r) => r.rideId),
      [...startedIds].reverse(),
      'newest first',
    );
    const head = all.rides[0];
    assert.equal(head.status, RideStatus.ACTIVE);
    assert.deepEqual([head.endedAtMs, head.durationSeconds, head.fareCents], [0, 0, 0], 'an active ride has its end fields 0');
    assert.equal(head.startedAtMs, active.startedAtMs);
    assert.equal(head.bikeId, bikes[3]);
    for (const r of all.rides.slice(1)) {
      assert.equal(r.status, RideStatus.FINISHED);
      assert.ok(r.endedAtMs >= r.startedAtMs && r.fareCents === expectedFare(r.durationSeconds));
    }

    // Pages of 3: the walk returns each ride once, even when a new ride is added in between.
    const p1 = await me.client.rides('', 3);
    assert.deepEqual(p1.rides.map((r) => r.rideId), all.rides.slice(0, 3).map((r) => r.rideId));
    assert.notEqual(p1.nextCursor, '');
    await me.client.endRide(active.rideId, lat, lng);
    const newer = await me.client.unlock(bikes[4]);
    const p2 = await me.client.rides(p1.nextCursor, 3);
    assert.deepEqual(p2.rides.map((r) => r.rideId), [startedIds[0]]);
    assert.equal(p2.nextCursor, '');
    // Pages of 2 over 5 rides: 2 + 2 + 1; an exact multiple ends with an empty cursor.
    const seen: number[] = [];
    let cursor = '';
    let pages = 0;
    do {
      const p = await me.client.rides(cursor, 2);
      seen.push(...p.rides.map((r) => r.rideId));
      cursor = p.nextCursor;
      pages++;
    } while (cursor !== '');
    assert.equal(pages, 3);
    assert.deepEqual(seen, [newer.rideId, ...[...startedIds].reverse()]);
    const q1 = await me.client.rides('', 5);
    assert.equal(q1.rides.length, 5);
    assert.equal(q1.nextCursor, '', 'no cursor when nothing follows');

    assert.deepEqual((await other.client.rides()).rides, [], "another user's history is empty");
    await rejectsWith(me.client.rides('', 101), ErrorCode.BAD_REQUEST, 'limit 101');
    await rejectsWith(me.client.rides('not a cursor', 2), ErrorCode.BAD_REQUEST, 'malformed cursor');
    await rejectsWith(me.client.rides(p1.nextCursor + 'A', 2), ErrorCode.BAD_REQUEST, 'tampered cursor');
    // A cursor of the account records is not a rides cursor.
    for (let i = 0; i < 2; i++) await me.client.recharge(1, `rc-${i}`);
    const recordsCursor = (await me.client.accountRecords('', 1)).nextCursor;
    assert.notEqual(recordsCursor, '');
    await rejectsWith(me.client.rides(recordsCursor, 2), ErrorCode.BAD_REQUEST, 'records cursor used for rides');
    await me.client.endRide(newer.rideId, lat, lng);
  });

  test('randomized mixed workload agrees with a model and passes `bikeshare audit`', { timeout: 240_000 }, async (t) => {
    const seed = Number(process.env.TEST_SEED ?? randomInt(1, 2 ** 31));
    t.diagnostic(`seed ${seed} (replay with TEST_SEED=${seed})`);
    // One generator per user: a user's choices do not depend on how the users interleave.
    const pickWith = <T>(rnd: () => number, xs: T[]): T => xs[Math.floor(rnd() * xs.length)];

    const people = await users(30, 0);
    const conns = await Promise.all(Array.from({ length: 6 }, () => client()));
    const { lat, lng } = randomCenter();
    const pool = await Promise.all(Array.from({ length: 6 }, (_, i) => bike(lat + i * 0.0002, lng)));

    interface Model {
      /** every recharge reply per key, with the amount sent */
      recharges: Map<string, { amount: number; reply: RechargeReply }[]>;
      /** every EndRide reply per ride */
      ends: Map<number, RideEnded[]>;
      keys: string[];
      active: RideStarted | null;
    }
    const unexpected: string[] = [];
    const ops: Record<string, number> = {};
    const note = (what: string) => (ops[what] = (ops[what] ?? 0) + 1);
    const fail = (what: string, err: unknown) => unexpected.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);

    async function recharge(via: BikeClient, u: User, m: Model, key: string, amount: number) {
      try {
        const reply = await via.request<RechargeReply>('Recharge', { token: u.token, amountCents: amount, idempotencyKey: key });
        const list = m.recharges.get(key) ?? [];
        list.push({ amount, reply: plain(reply) });
        m.recharges.set(key, list);
      } catch (err) {
        fail('Recharge', err);
      }
    }

    async function unlock(via: BikeClient, u: User, m: Model, bikeId: number, retry = false): Promise<RideStarted | null> {
      try {
        return plain(await via.request<RideStarted>('UnlockBike', { token: u.token, bikeId }));
      } catch (err) {
        const name = err instanceof ServerError ? err.codeName : '';
        if (!retry && ['BIKE_UNAVAILABLE', 'INSUFFICIENT_BALANCE'].includes(name)) {
          note(`unlock ${name}`);
          return null;
        }
        fail(`UnlockBike (active ${m.active?.rideId ?? 'none'})`, err);
        return null;
      }
    }

    async function end(via: BikeClient, u: User, m: Model, rideId: number, at: number) {
      try {
        const reply = plain(await via.request<RideEnded>('EndRide', { token: u.token, rideId, lat: lat + at * 0.001, lng: lng - at * 0.001 }));
        const list = m.ends.get(rideId) ?? [];
        list.push(reply);
        m.ends.set(rideId, list);
      } catch (err) {
        fail('EndRide', err);
      }
    }

    const models = new Map<number, Model>();
    await Promise.all(
      people.map(async (u, index) => {
        const rnd = prng(seed + index);
        const pick = <T>(xs: T[]): T => pickWith(rnd, xs);
        const conn = () => pick(conns);
        const m: Model = { recharges: new Map(), ends: new Map(), keys: [], active: null };
        models.set(u.userId, m);
        for (let step = 0; step < 25; step++) {
          const r = rnd();
          if (r < 0.35) {
            // Recharge; sometimes an earlier key again, sometimes two copies at once (a client retry).
            const reuse = m.keys.length > 0 && rnd() < 0.25;
            const key = reuse ? pick(m.keys) : `k-${step}-${Math.floor(rnd() * 1e9)}`;
            if (!reuse) m.keys.push(key);
            const copies = rnd() < 0.2 ? 2 : 1;
            note(reuse ? 'recharge (repeat key)' : copies === 2 ? 'recharge (x2 at once)' : 'recharge');
            await Promise.all(Array.from({ length: copies }, () => recharge(conn(), u, m, key, 1 + Math.floor(rnd() * 400))));
          } else if (r < 0.9) {
            if (!m.active) {
              const bikeId = pick(pool);
              const copies = rnd() < 0.3 ? 2 : 1;
              note(copies === 2 ? 'unlock (x2 at once)' : 'unlock');
              const got = await Promise.all(Array.from({ length: copies }, () => unlock(conn(), u, m, bikeId)));
              const won = got.filter((x): x is RideStarted => x !== null);
              // Two copies of one unlock that both win get the same ride. (One may legitimately
              // lose: the bike can come free from another rider between the two.)
              if (won.length === 2 && JSON.stringify(won[0]) !== JSON.stringify(won[1])) unexpected.push(`two answers to one unlock: ${JSON.stringify(won)}`);
              if (won.length) m.active = won[0];
            } else if (rnd() < 0.35) {
              // Retry of the own ride's bike: the same RideStarted.
              const again = await unlock(conn(), u, m, m.active.bikeId, true);
              note('unlock retry');
              if (again && JSON.stringify(again) !== JSON.stringify(m.active)) unexpected.push(`unlock retry answered ${JSON.stringify(again)} for ${JSON.stringify(m.active)}`);
            } else {
              const rideId = m.active.rideId;
              const copies = rnd() < 0.3 ? 2 : 1;
              note(copies === 2 ? 'end (x2 at once)' : 'end');
              await Promise.all(Array.from({ length: copies }, () => end(conn(), u, m, rideId, rnd())));
              m.active = null;
              if (rnd() < 0.3) {
                note('end again later');
                await end(conn(), u, m, rideId, rnd());
              }
            }
          } else {
            note('reads');
            await conn().request('GetBalance', { token: u.token }).catch((err) => fail('GetBalance', err));
            await conn().request('ListAccountRecords', { token: u.token, cursor: '', limit: 5 }).catch((err) => fail('ListAccountRecords', err));
          }
        }
        if (m.active) {
          await end(conn(), u, m, m.active.rideId, 0);
          m.active = null;
        }
      }),
    );
    t.diagnostic(`operations: ${JSON.stringify(ops)}`);
    assert.deepEqual(unexpected, [], 'no unexpected answers');
    assert.ok((ops.end ?? 0) + (ops['end (x2 at once)'] ?? 0) > 0 && (ops['recharge (repeat key)'] ?? 0) > 0, 'the workload ended rides and repeated keys');

    // Per user: each key applied once, each ride charged once, balance = what the model says.
    for (const u of people) {
      const m = models.get(u.userId)!;
      let expected = 0;
      for (const [key, list] of m.recharges) {
        const fresh = list.filter((x) => !x.reply.duplicate);
        assert.equal(fresh.length, 1, `user ${u.userId} key ${key}: one non-duplicate reply`);
        for (const x of list) {
          assert.equal(x.reply.recordId, fresh[0].reply.recordId, `key ${key}: same record id`);
          assert.equal(x.reply.balanceCents, fresh[0].reply.balanceCents, `key ${key}: same balance`);
        }
        expected += fresh[0].amount;
      }
      for (const [rideId, list] of m.ends) {
        for (const x of list) assert.deepEqual(x, list[0], `ride ${rideId}: identical RideEnded answers`);
        assert.equal(list[0].fareCents, expectedFare(list[0].durationSeconds));
        expected -= list[0].fareCents;
      }
      assert.equal(await u.client.balance(), expected, `user ${u.userId}: balance = recharges - fares`);
      const recordRows = await count(db, 'SELECT COUNT(*) AS n FROM account_records WHERE user_id = ?', [u.userId]);
      assert.equal(recordRows, m.recharges.size + m.ends.size, `user ${u.userId}: one record per key and per ride`);
    }
    assert.equal(await count(db, `SELECT COUNT(*) AS n FROM bikes WHERE id IN (${pool.join(',')}) AND status <> 'available'`, []), 0, 'all pool bikes returned');

    // The operator's audit command on this database.
    const [totals] = await db.rows<{ users: number; records: number; active: number; finished: number }>(
      "SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM account_records) AS records, (SELECT COUNT(*) FROM rides WHERE status = 'active') AS active, (SELECT COUNT(*) FROM rides WHERE status = 'finished') AS finished",
      [],
    );
    const ok = await runCli(['audit'], server.mysqlUrl);
    assert.equal(ok.code, 0, `audit exit code; output:\n${ok.stdout}${ok.stderr}`);
    const summary = /^audit: (\d+) users, (\d+) ledger records, (\d+) active and (\d+) finished rides: all invariants hold$/m.exec(ok.stdout);
    assert.ok(summary, `summary line in:\n${ok.stdout}`);
    assert.deepEqual(summary.slice(1).map(Number), [totals.users, totals.records, totals.active, totals.finished].map(Number));

    // One cent too many on one account, written behind the service's back: the audit must say so.
    const victim = people[seed % people.length].userId;
    const where = await balanceLocation(db);
    await db.run(`UPDATE ${where.table} SET balance_cents = balance_cents + 1 WHERE ${where.key} = ?`, [victim]);
    try {
      const bad = await runCli(['audit'], server.mysqlUrl);
      assert.equal(bad.code, 1, `audit exit code after the corruption; output:\n${bad.stdout}${bad.stderr}`);
      assert.match(bad.stdout, /^audit: .*: 1 violation\(s\)$/m);
      assert.match(bad.stdout, new RegExp(`VIOLATION ledger mismatches.*"userId":${victim}\\b`));
    } finally {
      await db.run(`UPDATE ${where.table} SET balance_cents = balance_cents - 1 WHERE ${where.key} = ?`, [victim]);
    }
    assert.equal((await runCli(['audit'], server.mysqlUrl)).code, 0, 'clean again once repaired');
  });

  test('`bikeshare bikes seed` adds bikes within the radius', { timeout: 120_000 }, async () => {
    const before = await count(db, 'SELECT COUNT(*) AS n FROM bikes', []);
    const [{ maxId }] = await db.rows<{ maxId: number | null }>('SELECT MAX(id) AS maxId FROM bikes', []);
    const res = await runCli(['bikes', 'seed', '--count', '25', '--lat', '31.2', '--lng', '121.4', '--radius-m', '500'], server.mysqlUrl);
    assert.equal(res.code, 0, `exit code; output:\n${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /^added 25\b/m);
    assert.equal(await count(db, 'SELECT COUNT(*) AS n FROM bikes', []), before + 25);
    const fresh = await db.rows<{ id: number; status: string; lat: number; lng: number }>('SELECT id, status, lat, lng FROM bikes WHERE id > ?', [Number(maxId ?? 0)]);
    assert.equal(fresh.length, 25);
    for (const b of fresh) {
      assert.equal(b.status, 'available');
      const d = distanceM(31.2, 121.4, Number(b.lat), Number(b.lng));
      assert.ok(d <= 500 + 1e-6, `bike ${b.id} is ${d} m away`);
    }
    // And they are on the map.
    const c = await client();
    const listed = new Set((await c.nearbyBikes({ lat: 31.2, lng: 121.4, radiusM: 500, limit: 100 })).bikes.map((b) => b.bikeId));
    for (const b of fresh) assert.ok(listed.has(Number(b.id)), `bike ${b.id} listed`);
  });
});
