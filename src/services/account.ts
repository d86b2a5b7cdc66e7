// Balance, Recharge, ListAccountRecords. Money moves only inside Db.transaction.
import type { Clock } from '../clock.js';
import type { Db } from '../stores/mysql.js';
import { balanceOf, lockBalance, setBalance } from '../dao/users.js';
import { findByIdempotencyKey, insertRecord, listRecords, RECORD_RECHARGE } from '../dao/records.js';
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
   * One transaction: lock the account row (one user's recharges queue up
   * behind each other), raise the balance, write the RECHARGE record. The
   * unique key (user_id, idempotency_key) refuses a repeated key: the
   * transaction rolls back and the first recharge's answer is returned with
   * duplicate = true. (No locking read of account_records: its gap locks
   * would make first recharges of different users deadlock.)
   */
  async recharge(userId: number, amountCents: number, idempotencyKey: string): Promise<RechargeReply> {
    const key = Buffer.from(idempotencyKey, 'utf8');
    try {
      return await this.db.transaction(async (tx) => {
        const now = this.clock.now();
        const after = (await lockBalance(tx, userId)) + amountCents;
        await setBalance(tx, userId, after, now);
        const recordId = await insertRecord(tx, { userId, kind: RECORD_RECHARGE, amountCents, balanceAfterCents: after, idempotencyKey: key, rideId: null, now });
        return { balanceCents: after, recordId, duplicate: false };
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ER_DUP_ENTRY') throw err;
      const earlier = await findByIdempotencyKey(this.db, userId, key);
      if (!earlier) throw err;
      return { balanceCents: earlier.balanceAfterCents, recordId: earlier.id, duplicate: true };
    }
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
