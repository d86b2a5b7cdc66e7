// Verification codes and their limits, in Redis. Each operation is one Lua
// script, so the checks and the writes are atomic and cost one round trip.
import type { Redis } from 'ioredis';
import { viaRedis } from '../stores/unavailable.js';

export interface CodeRules {
  ttlMs: number;
  resendMs: number;
  maxAttempts: number;
  /** successful RequestCodes per address per 60 s; 0 = off */
  perAddressPerMinute: number;
  /** CODE_INVALID answers per phone per hour; 0 = off */
  failuresPerHour: number;
}

export type IssueResult = { ok: true } | { ok: false; limit: 'phone' | 'address'; retryAfterMs: number };
export type CheckResult =
  | { ok: true; restore: { ttlMs: number; attempts: number } }
  | { ok: false; limited: boolean; retryAfterMs: number };

// KEYS: resend, code, address counter. ARGV: code, ttlMs, resendMs, address limit.
const ISSUE = `
local limit = tonumber(ARGV[4])
if limit > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= limit then
  return {2, redis.call('PTTL', KEYS[3])}
end
if tonumber(ARGV[3]) > 0 and not redis.call('SET', KEYS[1], '1', 'PX', ARGV[3], 'NX') then
  return {1, redis.call('PTTL', KEYS[1])}
end
-- HSET sets both fields, so it replaces the earlier code whole (no DEL needed).
redis.call('HSET', KEYS[2], 'c', ARGV[1], 'a', 0)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if limit > 0 and redis.call('INCR', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], 60000) end
return {0, 0}`;

// KEYS: code, failure counter. ARGV: code given, max attempts, failure limit.
// Returns {0, pttl, attempts} on a match (the code is consumed), {1, 0} for
// CODE_INVALID, {2, pttl} when the phone is over its failure limit.
const CHECK = `
local limit = tonumber(ARGV[3])
if limit > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= limit then
  return {2, redis.call('PTTL', KEYS[2])}
end
local stored = redis.call('HGET', KEYS[1], 'c')
if stored == ARGV[1] then
  local ttl = redis.call('PTTL', KEYS[1])
  local attempts = tonumber(redis.call('HGET', KEYS[1], 'a') or '0')
  redis.call('DEL', KEYS[1])
  return {0, ttl, attempts}
end
if stored and redis.call('HINCRBY', KEYS[1], 'a', 1) >= tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end
if limit > 0 and redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], 3600000) end
return {1, 0}`;

// KEYS: code. ARGV: code, attempts, ttlMs. Puts a consumed code back unless a newer one exists.
const RESTORE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'c', ARGV[1], 'a', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

type Script = (...args: (string | number)[]) => Promise<number[]>;

export class CodeStore {
  private readonly issueScript: Script;
  private readonly checkScript: Script;
  private readonly restoreScript: Script;

  constructor(
    redis: Redis,
    private readonly rules: CodeRules,
  ) {
    redis.defineCommand('bikeIssueCode', { numberOfKeys: 3, lua: ISSUE });
    redis.defineCommand('bikeCheckCode', { numberOfKeys: 2, lua: CHECK });
    redis.defineCommand('bikeRestoreCode', { numberOfKeys: 1, lua: RESTORE });
    const commands = redis as unknown as Record<string, Script>;
    this.issueScript = commands.bikeIssueCode.bind(redis);
    this.checkScript = commands.bikeCheckCode.bind(redis);
    this.restoreScript = commands.bikeRestoreCode.bind(redis);
  }

  /** Stores a new code for the phone unless a limit says no. */
  async issue(phone: string, code: string, address: string): Promise<IssueResult> {
    const r = this.rules;
    const [status, pttl] = await viaRedis(this.issueScript(`bs:resend:${phone}`, `bs:code:${phone}`, `bs:addr:${address}`, code, r.ttlMs, r.resendMs, r.perAddressPerMinute));
    if (status === 0) return { ok: true };
    return { ok: false, limit: status === 1 ? 'phone' : 'address', retryAfterMs: Math.max(1, pttl) };
  }

  /** Consumes the code if it matches; counts a wrong try otherwise. */
  async check(phone: string, code: string): Promise<CheckResult> {
    const [status, ttl, attempts] = await viaRedis(this.checkScript(`bs:code:${phone}`, `bs:lfail:${phone}`, code, this.rules.maxAttempts, this.rules.failuresPerHour));
    if (status === 0) return { ok: true, restore: { ttlMs: ttl, attempts } };
    return { ok: false, limited: status === 2, retryAfterMs: Math.max(1, ttl) };
  }

  /** Undoes a consume when the login could not finish (so the same code may be retried). */
  async restore(phone: string, code: string, restore: { ttlMs: number; attempts: number }): Promise<void> {
    if (restore.ttlMs > 0) await viaRedis(this.restoreScript(`bs:code:${phone}`, code, restore.attempts, restore.ttlMs));
  }
}
