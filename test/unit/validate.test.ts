// Pure rules: field validation (src/dispatch/validate.ts), fares
// (src/services/fares.ts), geometry (src/services/geo.ts) and page cursors
// (src/services/cursor.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as v from '../../src/dispatch/validate.js';
import { BadRequestError } from '../../src/errors.js';
import { ErrorCode } from '../../src/protocol/messages.js';
import { durationSeconds, fareCents, type FareRule } from '../../src/services/fares.js';
import { boundingBox, EARTH_RADIUS_M, haversineM } from '../../src/services/geo.js';
import { decodeCursor, encodeCursor, page } from '../../src/services/cursor.js';

/** Asserts `fn` throws BAD_REQUEST whose message starts with the field name. */
function assertBad(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BadRequestError, `BadRequestError, got ${String(err)}`);
    assert.equal(err.code, ErrorCode.BAD_REQUEST);
    assert.ok(err.message.startsWith(`${field}: `), `message names ${field}: ${err.message}`);
    return true;
  });
}

// ---- validate.ts ----------------------------------------------------------

test('phone: ^\\+?[1-9][0-9]{6,14}$', () => {
  for (const ok of ['+4915112345678', '4915112345678', '1234567', '+123456789012345', '9'.repeat(15)]) assert.equal(v.phone(ok), ok);
  for (const bad of ['', '+', '123456', '0123456789', '+0123456789', '1234567890123456', '+49 151 1234567', '++4915112345', '49151abc45678', '４９１５１１２３４５６', '4915112345678\n']) {
    assertBad(() => v.phone(bad), 'phone');
  }
});

test('Login.code: exactly six ASCII digits', () => {
  for (const ok of ['000000', '123456', '999999']) assert.equal(v.sixDigits(ok), ok);
  for (const bad of ['', '12345', '1234567', '12345a', ' 12345', '12345 ', '١٢٣٤٥٦', '１２３４５６', '12345\n']) assertBad(() => v.sixDigits(bad), 'code');
});

test('intRange: integers within the bounds only', () => {
  assert.equal(v.intRange(1, 1, 1_000_000, 'amount_cents'), 1);
  assert.equal(v.intRange(1_000_000, 1, 1_000_000, 'amount_cents'), 1_000_000);
  for (const bad of [0, -1, 1_000_001, 1.5, NaN, Infinity, -Infinity, 2 ** 53]) assertBad(() => v.intRange(bad, 1, 1_000_000, 'amount_cents'), 'amount_cents');
});

test('ids are non-zero integers; beyond 2^53 they pass (and are found by no query)', () => {
  assert.equal(v.id(1, 'bike_id'), 1);
  assert.equal(v.id(2 ** 53 - 1, 'bike_id'), 2 ** 53 - 1);
  assert.equal(v.id(2 ** 53, 'bike_id'), 2 ** 53);
  assert.equal(v.id(2 ** 64, 'bike_id'), 2 ** 64, 'uint64 max as decoded (rounded up)');
  for (const bad of [0, -1, 0.5, NaN, Infinity]) assertBad(() => v.id(bad, 'bike_id'), 'bike_id');
});

test('limit: 0 means 20, otherwise 1..100', () => {
  assert.equal(v.limit(0), 20);
  assert.equal(v.limit(1), 1);
  assert.equal(v.limit(100), 100);
  assertBad(() => v.limit(101), 'limit');
  assertBad(() => v.limit(4_294_967_295), 'limit');
});

test('lat finite in [-90, 90], lng finite in [-180, 180]', () => {
  for (const ok of [-90, -0, 0, 45.5, 90]) assert.equal(v.lat(ok), ok);
  for (const ok of [-180, 0, 179.999999, 180]) assert.equal(v.lng(ok), ok);
  for (const bad of [-90.0000001, 90.0000001, NaN, Infinity, -Infinity, 180]) assertBad(() => v.lat(bad), 'lat');
  for (const bad of [-180.0000001, 180.0000001, NaN, Infinity, 360]) assertBad(() => v.lng(bad), 'lng');
});

test('utf8Bytes counts bytes of UTF-8, not characters', () => {
  assert.equal(v.utf8Bytes('k', 64, 'idempotency_key'), 'k');
  assert.equal(v.utf8Bytes('a'.repeat(64), 64, 'idempotency_key').length, 64);
  assert.equal(v.utf8Bytes('€'.repeat(21), 64, 'idempotency_key'), '€'.repeat(21)); // 63 bytes
  assertBad(() => v.utf8Bytes('', 64, 'idempotency_key'), 'idempotency_key');
  assertBad(() => v.utf8Bytes('a'.repeat(65), 64, 'idempotency_key'), 'idempotency_key');
  assertBad(() => v.utf8Bytes('€'.repeat(22), 64, 'idempotency_key'), 'idempotency_key'); // 22 chars, 66 bytes
  assertBad(() => v.utf8Bytes('😀'.repeat(17), 64, 'idempotency_key'), 'idempotency_key'); // 34 UTF-16 units, 68 bytes
});

// ---- fares.ts -------------------------------------------------------------

const DEFAULT_RULE: FareRule = { fareBaseCents: 150, fareBaseSeconds: 1800, fareStepCents: 100, fareStepSeconds: 1800 };
const SHORT_RULE: FareRule = { fareBaseCents: 100, fareBaseSeconds: 60, fareStepCents: 25, fareStepSeconds: 30 };

test('fare table with the default rule (PROTOCOL.md: 1800 s costs 150, 1801 s 250)', () => {
  const table: [number, number][] = [
    [0, 150],
    [1, 150],
    [1799, 150],
    [1800, 150],
    [1801, 250],
    [3600, 250],
    [3601, 350],
    [5400, 350],
    [5401, 450],
    [86_400, 150 + 100 * 47],
  ];
  for (const [duration, fare] of table) assert.equal(fareCents(DEFAULT_RULE, duration), fare, `${duration} s`);
});

test('fare table with a short rule', () => {
  const table: [number, number][] = [
    [0, 100],
    [60, 100],
    [61, 125],
    [90, 125],
    [91, 150],
    [120, 150],
    [121, 175],
  ];
  for (const [duration, fare] of table) assert.equal(fareCents(SHORT_RULE, duration), fare, `${duration} s`);
  // A rule without a free base period charges a step from the first second.
  const noBase = { ...SHORT_RULE, fareBaseSeconds: 0 };
  assert.equal(fareCents(noBase, 0), 100);
  assert.equal(fareCents(noBase, 1), 125);
});

test('duration is floor of whole seconds measured by the server, never negative', () => {
  assert.equal(durationSeconds(1_000, 1_000), 0);
  assert.equal(durationSeconds(1_000, 1_999), 0);
  assert.equal(durationSeconds(1_000, 2_000), 1);
  assert.equal(durationSeconds(0, 1_800_999), 1800);
  assert.equal(durationSeconds(5_000, 1_000), 0, 'a clock step backwards is not a negative duration');
  // 1800.999 s rounds down, so it is still the base fare.
  assert.equal(fareCents(DEFAULT_RULE, durationSeconds(0, 1_800_999)), 150);
  assert.equal(fareCents(DEFAULT_RULE, durationSeconds(0, 1_801_000)), 250);
});

test('property: fare is the contract formula, an integer, and never decreases with duration', () => {
  const ruleArb = fc.record({
    fareBaseCents: fc.integer({ min: 0, max: 10_000 }),
    fareBaseSeconds: fc.integer({ min: 0, max: 100_000 }),
    fareStepCents: fc.integer({ min: 0, max: 10_000 }),
    fareStepSeconds: fc.integer({ min: 1, max: 100_000 }),
  });
  fc.assert(
    fc.property(ruleArb, fc.integer({ min: 0, max: 10_000_000 }), (rule, duration) => {
      // The formula in exact integer arithmetic (BigInt).
      const over = BigInt(Math.max(0, duration - rule.fareBaseSeconds));
      const step = BigInt(rule.fareStepSeconds);
      const expected = BigInt(rule.fareBaseCents) + BigInt(rule.fareStepCents) * ((over + step - 1n) / step);
      const fare = fareCents(rule, duration);
      assert.ok(Number.isSafeInteger(fare));
      assert.equal(BigInt(fare), expected);
      assert.ok(fareCents(rule, duration + 1) >= fare);
    }),
    { numRuns: 2000 },
  );
});

// ---- geo.ts ---------------------------------------------------------------

const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);

test('haversine: known distances on the sphere of radius 6371008.8 m', () => {
  assert.equal(EARTH_RADIUS_M, 6371008.8);
  assert.equal(haversineM(48.8566, 2.3522, 48.8566, 2.3522), 0);
  near(haversineM(0, 0, 1, 0), (EARTH_RADIUS_M * Math.PI) / 180, 1e-6, 'one degree of latitude');
  near(haversineM(0, 0, 0, 1), (EARTH_RADIUS_M * Math.PI) / 180, 1e-6, 'one degree of longitude at the equator');
  near(haversineM(60, 0, 60, 1), (EARTH_RADIUS_M * Math.PI) / 180 / 2, 1, 'one degree of longitude at 60° is about half');
  near(haversineM(0, 0, 0, 90), (EARTH_RADIUS_M * Math.PI) / 2, 1e-6, 'a quarter of the equator');
  near(haversineM(0, 0, 0, 180), EARTH_RADIUS_M * Math.PI, 1e-6, 'antipodes');
  near(haversineM(90, 0, -90, 0), EARTH_RADIUS_M * Math.PI, 1e-6, 'pole to pole');
  near(haversineM(90, 0, 90, 123), 0, 1e-6, 'longitude does not matter at a pole');
  near(haversineM(0, 179.9, 0, -179.9), (EARTH_RADIUS_M * Math.PI * 0.2) / 180, 1e-6, 'across the antimeridian');
  near(haversineM(48.8566, 2.3522, 51.5074, -0.1278), 343_556, 100, 'Paris - London');
  near(haversineM(40.7128, -74.006, 51.5074, -0.1278), 5_570_240, 1000, 'New York - London');
  // Symmetric.
  assert.equal(haversineM(48.8566, 2.3522, 51.5074, -0.1278), haversineM(51.5074, -0.1278, 48.8566, 2.3522));
});

/** The point `distanceM` from (lat, lng) along `bearing` (radians), longitude in [-180, 180]. */
function destination(lat: number, lng: number, distanceM: number, bearing: number): { lat: number; lng: number } {
  const RAD = Math.PI / 180;
  const d = distanceM / EARTH_RADIUS_M;
  const lat1 = lat * RAD;
  const lat2 = Math.asin(Math.min(1, Math.max(-1, Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(bearing))));
  const lng2 = lng * RAD + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
  let outLng = lng2 / RAD;
  while (outLng > 180) outLng -= 360;
  while (outLng < -180) outLng += 360;
  return { lat: lat2 / RAD, lng: outLng };
}

function boxContains(box: ReturnType<typeof boundingBox>, p: { lat: number; lng: number }): boolean {
  if (p.lat < box.minLat || p.lat > box.maxLat) return false;
  const inRange = (lng: number) => box.lngRanges.some(([lo, hi]) => lng >= lo && lng <= hi);
  // -180 and 180 are the same meridian.
  return inRange(p.lng) || (Math.abs(p.lng) === 180 && inRange(-p.lng));
}

test('boundingBox: ranges stay within [-180, 180] and lat within [-90, 90]', () => {
  for (const [lat, lng] of [
    [0, 0],
    [0, 179.99],
    [0, -179.99],
    [89.99, 10],
    [-89.99, -10],
    [90, 0],
    [-90, 180],
  ]) {
    const box = boundingBox(lat, lng, 5000);
    assert.ok(box.minLat >= -90 && box.maxLat <= 90 && box.minLat <= lat && lat <= box.maxLat);
    for (const [lo, hi] of box.lngRanges) assert.ok(-180 <= lo && lo <= hi && hi <= 180, `range [${lo}, ${hi}] at (${lat}, ${lng})`);
  }
  // Across the antimeridian the box is two ranges.
  assert.equal(boundingBox(0, 179.99, 5000).lngRanges.length, 2);
  assert.equal(boundingBox(0, -179.99, 5000).lngRanges.length, 2);
  // At a pole every longitude is in reach.
  assert.deepEqual(boundingBox(90, 0, 1).lngRanges, [[-180, 180]]);
});

test('property: boundingBox contains every point within the radius (incl. poles and antimeridian)', () => {
  const latArb = fc.oneof(
    fc.double({ min: -90, max: 90, noNaN: true }),
    fc.double({ min: 89.9, max: 90, noNaN: true }),
    fc.double({ min: -90, max: -89.9, noNaN: true }),
    fc.constantFrom(0, 90, -90, 89.99, -89.99),
  );
  const lngArb = fc.oneof(
    fc.double({ min: -180, max: 180, noNaN: true }),
    fc.double({ min: 179.9, max: 180, noNaN: true }),
    fc.double({ min: -180, max: -179.9, noNaN: true }),
    fc.constantFrom(0, 180, -180),
  );
  fc.assert(
    fc.property(
      latArb,
      lngArb,
      fc.integer({ min: 1, max: 5000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
      (lat, lng, radius, fraction, bearing) => {
        const p = destination(lat, lng, radius * fraction, bearing);
        // Only points that the exact filter would keep matter.
        fc.pre(haversineM(lat, lng, p.lat, p.lng) <= radius);
        const box = boundingBox(lat, lng, radius);
        assert.ok(boxContains(box, p), `(${p.lat}, ${p.lng}) is ${haversineM(lat, lng, p.lat, p.lng)} m from (${lat}, ${lng}) but outside ${JSON.stringify(box)}`);
      },
    ),
    { numRuns: 20_000 },
  );
});

test('boundingBox contains points at exactly the radius in every direction', () => {
  for (const [lat, lng] of [
    [0, 0],
    [45, 179.999],
    [-45, -179.999],
    [89.97, 0],
    [-89.97, 90],
    [60, 180],
  ]) {
    for (let deg = 0; deg < 360; deg += 5) {
      const p = destination(lat, lng, 5000, (deg * Math.PI) / 180);
      if (haversineM(lat, lng, p.lat, p.lng) > 5000) continue;
      assert.ok(boxContains(boundingBox(lat, lng, 5000), p), `bearing ${deg} from (${lat}, ${lng})`);
    }
  }
});

// ---- cursor.ts ------------------------------------------------------------

test('cursor: round trip, and the empty cursor is the first page', () => {
  assert.equal(decodeCursor('r', ''), 0);
  assert.equal(decodeCursor('d', ''), 0);
  for (const id of [1, 9, 10, 123456789, 2 ** 53 - 1]) {
    assert.equal(decodeCursor('r', encodeCursor('r', id)), id);
    assert.equal(decodeCursor('d', encodeCursor('d', id)), id);
  }
  fc.assert(
    fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom<'r' | 'd'>('r', 'd'), (id, kind) => {
      const cursor = encodeCursor(kind, id);
      assert.match(cursor, /^[A-Za-z0-9_-]+$/, 'printable, URL-safe');
      assert.equal(decodeCursor(kind, cursor), id);
    }),
  );
});

test('cursor: malformed cursors are BAD_REQUEST naming the cursor', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const good = encodeCursor('r', 5);
  for (const bad of [
    'abc',
    '!!!!',
    ' ',
    good + '=',
    good + 'A',
    Buffer.from('r1.5').toString('base64'), // padded base64, not what this server writes
    b64('r1.0'),
    b64('r1.05'),
    b64('r1.-5'),
    b64('r1.5 '),
    b64('r1.'),
    b64('r2.5'),
    b64('x1.5'),
    b64('r1.99999999999999999'),
    b64('r1.9007199254740993'),
    b64('r1.1e3'),
  ]) {
    assertBad(() => decodeCursor('r', bad), 'cursor');
  }
});

test('cursor: a rides cursor is refused for records, and the other way round', () => {
  const rides = encodeCursor('d', 42);
  const records = encodeCursor('r', 42);
  assertBad(() => decodeCursor('r', rides), 'cursor');
  assertBad(() => decodeCursor('d', records), 'cursor');
  assert.equal(decodeCursor('d', rides), 42);
});

test('property: any string either decodes to the id it encodes or is BAD_REQUEST', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), (s) => {
      try {
        const id = decodeCursor('r', s);
        assert.ok(s === '' ? id === 0 : encodeCursor('r', id) === s);
      } catch (err) {
        assert.ok(err instanceof BadRequestError, `only BadRequestError, got ${String(err)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

test('page: limit + 1 rows give a page of limit and a cursor after its last item', () => {
  const rows = [10, 9, 8, 7].map((id) => ({ id }));
  const first = page('d', rows, 3);
  assert.deepEqual(first.items.map((r) => r.id), [10, 9, 8]);
  assert.equal(decodeCursor('d', first.nextCursor), 8);
  const last = page('d', rows.slice(0, 3), 3);
  assert.equal(last.items.length, 3);
  assert.equal(last.nextCursor, '', 'empty exactly when nothing follows');
  assert.deepEqual(page('r', [], 20), { items: [], nextCursor: '' });
});
