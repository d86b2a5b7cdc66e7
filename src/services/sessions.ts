// Login tokens in Redis, so any instance accepts any client's token. Keys are
// a SHA-256 of the token: a leaked Redis dump does not hand out live tokens.
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UnauthenticatedError } from '../errors.js';
import { viaRedis } from '../stores/unavailable.js';

const TOKEN = /^[\x21-\x7e]{1,128}$/;

const keyOf = (token: string) => 'bs:sess:' + createHash('sha256').update(token).digest('base64url');

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  /** A new token (256 bits from the CSPRNG, base64url) bound to the user for ttlSeconds. */
  async create(userId: number): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await viaRedis(this.redis.set(keyOf(token), String(userId), 'EX', this.ttlSeconds));
    return token;
  }

  /** The user of a live token; UnauthenticatedError for a missing, malformed, unknown or expired one. */
  async userOf(token: string): Promise<number> {
    if (!TOKEN.test(token)) throw new UnauthenticatedError();
    const userId = await viaRedis(this.redis.get(keyOf(token)));
    if (userId === null) throw new UnauthenticatedError();
    return Number(userId);
  }

  /** Ends this token on every instance at once. */
  async end(token: string): Promise<boolean> {
    return (await viaRedis(this.redis.del(keyOf(token)))) === 1;
  }
}
