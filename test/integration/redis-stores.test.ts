// The Redis stores against a real Redis: code TTLs, resend window, attempts,
// sessions under a hash of the token, and an unreachable Redis failing fast.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedis, waitReady } from '../../src/stores/redis.js';
import { CodeStore } from '../../src/services/codes.js';
import { SessionStore } from '../../src/services/sessions.js';
import { ServiceUnavailableError, UnauthenticatedError } from '../../src/errors.js';
import { REDIS_URL } from '../helpers/server.js';

let redis: Redis;
const phone = () => `+1999${randomBytes(4).readUInt32BE() % 10_000_000}`;
const rules = { ttlMs: 1500, resendMs: 1000, maxAttempts: 3, perAddressPerMinute: 0, failuresPerHour: 0 };

before(async () => {
  redis = createRedis({ url: REDIS_URL, timeoutMs: 2000 });
  assert.equal(await waitReady(redis, 5000), true);
});
after(() => redis.disconnect());

test('a code is single use', async () => {
  const codes = new CodeStore(redis, rules);
  const p = phone();
  assert.deepEqual(await codes.issue(p, '123456', '10.0.0.1'), { ok: true });
  assert.equal((await codes.check(p, '123456')).ok, true);
  assert.equal((await codes.check(p, '123456')).ok, false);
});

test('resend window: a second code too soon is refused with the time left', async () => {
  const codes = new CodeStore(redis, rules);
  const p = phone();
  await codes.issue(p, '111111', '10.0.0.1');
  const again = await codes.issue(p, '222222', '10.0.0.1');
  assert.equal(again.ok, false);
  if (!again.ok) {
    assert.equal(again.limit, 'phone');
    assert.ok(again.retryAfterMs > 0 && again.retryAfterMs <= 1000, String(again.retryAfterMs));
  }
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual(await codes.issue(p, '333333', '10.0.0.1'), { ok: true });
  assert.equal((await codes.check(p, '111111')).ok, false, 'the new code replaced the old one');
  assert.equal((await codes.check(p, '333333')).ok, true);
});

test('codes expire after their TTL (Redis decides)', async () => {
  const codes = new CodeStore(redis, rules);
  const p = phone();
  await codes.issue(p, '444444', '10.0.0.1');
  await new Promise((r) => setTimeout(r, 1700));
  assert.equal((await codes.check(p, '444444')).ok, false);
});

test('wrong tries void the code after maxAttempts', async () => {
  const codes = new CodeStore(redis, rules);
  const p = phone();
  await codes.issue(p, '555555', '10.0.0.1');
  for (let i = 0; i < 3; i++) assert.equal((await codes.check(p, '000000')).ok, false);
  assert.equal((await codes.check(p, '555555')).ok, false);
});

test('a new code starts with no wrong tries and a fresh TTL', async () => {
  const codes = new CodeStore(redis, { ...rules, resendMs: 0 });
  const p = phone();
  await codes.issue(p, '121212', '10.0.0.1');
  for (let i = 0; i < 2; i++) assert.equal((await codes.check(p, '000000')).ok, false);
  await new Promise((r) => setTimeout(r, 800));
  await codes.issue(p, '343434', '10.0.0.1');
  assert.ok((await redis.pttl(`bs:code:${p}`)) > 1000, 'the TTL starts again with the new code');
  // Two more wrong tries would void the old code (3 in all); the new one counts from zero.
  for (let i = 0; i < 2; i++) assert.equal((await codes.check(p, '000000')).ok, false);
  assert.equal((await codes.check(p, '343434')).ok, true);
});

test('a consumed code can be given back (login failed after the check)', async () => {
  const codes = new CodeStore(redis, rules);
  const p = phone();
  await codes.issue(p, '666666', '10.0.0.1');
  const first = await codes.check(p, '666666');
  assert.ok(first.ok);
  if (first.ok) await codes.restore(p, '666666', first.restore);
  assert.equal((await codes.check(p, '666666')).ok, true);
});

test('per-address and per-phone-failure limits', async () => {
  const codes = new CodeStore(redis, { ...rules, resendMs: 0, perAddressPerMinute: 2, failuresPerHour: 2 });
  const address = `10.9.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;
  assert.equal((await codes.issue(phone(), '123123', address)).ok, true);
  assert.equal((await codes.issue(phone(), '123123', address)).ok, true);
  const third = await codes.issue(phone(), '123123', address);
  assert.equal(third.ok, false);
  if (!third.ok) assert.equal(third.limit, 'address');
  const p = phone();
  await codes.issue(p, '777777', '10.0.0.2');
  await codes.check(p, '000000');
  await codes.check(p, '000000');
  const limited = await codes.check(p, '777777');
  assert.equal(limited.ok, false);
  if (!limited.ok) assert.equal(limited.limited, true);
});

test('sessions: stored under a SHA-256 of the token with the TTL, ended by logout', async () => {
  const sessions = new SessionStore(redis, 60);
  const token = await sessions.create(42);
  assert.ok(token.length >= 22 && /^[A-Za-z0-9_-]+$/.test(token));
  assert.equal(await redis.exists(`bs:sess:${token}`), 0, 'the token itself is not a key');
  const key = 'bs:sess:' + createHash('sha256').update(token).digest('base64url');
  const ttl = await redis.ttl(key);
  assert.ok(ttl > 55 && ttl <= 60, String(ttl));
  assert.equal(await sessions.userOf(token), 42);
  assert.equal(await sessions.end(token), true);
  await assert.rejects(sessions.userOf(token), UnauthenticatedError);
  await assert.rejects(sessions.userOf(''), UnauthenticatedError);
  await assert.rejects(sessions.userOf('x'.repeat(129)), UnauthenticatedError);
});

test('an unreachable Redis fails fast with SERVICE_UNAVAILABLE', async () => {
  const dead = createRedis({ url: 'redis://127.0.0.1:1/0', timeoutMs: 500 });
  dead.on('error', () => undefined);
  try {
    const started = Date.now();
    await assert.rejects(new SessionStore(dead, 60).userOf('abc'), ServiceUnavailableError);
    assert.ok(Date.now() - started < 5000);
  } finally {
    dead.disconnect();
  }
});
