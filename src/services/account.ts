// Balance, Recharge, ListAccountRecords. Money moves only inside Db.transaction.
import type { Clock } from '../clock.js';
import type { Db } from '../stores/mysql.js';
import { balanceOf, setBalance } from '../dao/users.js';
import { insertRecord, listRecords, lockForRecharge, RECORD_RECHARGE } from '../dao/records.js';
import type { AccountRecordPage, RechargeReply } from '../protocol/messages.js';
import { decodeCursor, page } from './cursor.js';

export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  balance(userId: number): Promise<number> {
    return balanceOf(this.db, userId);
  }

  /**
   * One transaction: lock the account row (so one user's recharges queue up
   * behind each other), return the stored answer if this key was applied
   * already, else raise the balance and write the RECHARGE record.
   */
  recharge(userId: number, amountCents: number, idempotencyKey: string): Promise<RechargeReply> {
    const key = Buffer.from(idempotencyKey, 'utf8');
    return this.db.transaction(async (tx) => {
      const { balanceCents: balance, earlier } = await lockForRecharge(tx, userId, key);
      if (earlier) return { balanceCents: earlier.balanceAfterCents, recordId: earlier.id, duplicate: true };
      const now = this.clock.now();
      const after = balance + amountCents;
      await setBalance(tx, userId, after, now);
      const recordId = await insertRecord(tx, { userId, kind: RECORD_RECHARGE, amountCents, balanceAfterCents: after, idempotencyKey: key, rideId: null, now });
      return { balanceCents: after, recordId, duplicate: false };
    });
  }

  async records(userId: number, cursor: string, limit: number): Promise<AccountRecordPage> {
    const before = decodeCursor('r', cursor);
    const { items, nextCursor } = page('r', await listRecords(this.db, userId, before, limit + 1), limit);
    return {
      records: items.map((r) => ({
        recordId: r.id,
        kind: r.kind,
        amountCents: r.amountCents,
        balanceAfterCents: r.balanceAfterCents,
        createdAtMs: r.createdAtMs,
        rideId: r.rideId,
      })),
      nextCursor,
    };
  }
}
