// RequestCode, Login, Logout (docs/protocol.md section 5, "Verification codes", "Login").
import { randomInt } from 'node:crypto';
import { CodeInvalidError, RateLimitedError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { Db } from '../stores/mysql.js';
import { upsertUserForLogin } from '../dao/users.js';
import type { LoginReply, RequestCodeReply } from '../protocol/messages.js';
import type { CodeStore } from './codes.js';
import type { SessionStore } from './sessions.js';
import type { SmsSender } from './sms.js';

export interface AuthSettings {
  codeTtlSeconds: number;
  codeResendSeconds: number;
  tokenTtlSeconds: number;
}

export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly codes: CodeStore,
    private readonly sessions: SessionStore,
    private readonly sms: SmsSender,
    private readonly settings: AuthSettings,
    private readonly clock: Clock,
  ) {}

  async requestCode(phone: string, address: string): Promise<RequestCodeReply> {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const issued = await this.codes.issue(phone, code, address);
    if (!issued.ok) {
      throw new RateLimitedError(issued.limit === 'phone' ? 'a code was sent to this phone recently' : 'too many codes requested from this address', issued.retryAfterMs);
    }
    return {
      ttlSeconds: this.settings.codeTtlSeconds,
      resendAfterSeconds: this.settings.codeResendSeconds,
      debugCode: this.sms.send(phone, code),
    };
  }

  async login(phone: string, code: string): Promise<LoginReply> {
    const checked = await this.codes.check(phone, code);
    if (!checked.ok) {
      if (checked.limited) throw new RateLimitedError('too many wrong codes for this phone', checked.retryAfterMs);
      throw new CodeInvalidError();
    }
    try {
      const now = this.clock.now();
      const user = await upsertUserForLogin(this.db, phone, now);
      const token = await this.sessions.create(user.userId);
      return {
        token,
        userId: user.userId,
        expiresAtMs: now + this.settings.tokenTtlSeconds * 1000,
        balanceCents: user.balanceCents,
        newUser: user.newUser,
      };
    } catch (err) {
      // The outcome is unknown to the client, who may retry as is: give the code back.
      await this.codes.restore(phone, code, checked.restore).catch(() => undefined);
      throw err;
    }
  }

  async logout(token: string): Promise<void> {
    await this.sessions.end(token);
  }
}
