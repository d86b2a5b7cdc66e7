// users and their accounts.
import type { Executor } from '../stores/mysql.js';

export interface LoginRow {
  userId: number;
  newUser: boolean;
  balanceCents: number;
}

/**
 * The login upsert: one atomic INSERT ... ON DUPLICATE KEY UPDATE, never
 * "select then insert". `login_count + 1` makes every repeat a real change,
 * so affectedRows tells the two cases apart (1 = inserted, 2 = updated).
 * A new user's account is created in the same transaction (the caller's).
 */
export async function upsertUserForLogin(tx: Executor, phone: string, now: number): Promise<LoginRow> {
  const res = await tx.run(
    'INSERT INTO users (phone, created_at_ms, last_login_at_ms) VALUES (?, ?, ?) ' +
      'ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), last_login_at_ms = ?, login_count = login_count + 1',
    [phone, now, now, now],
  );
  const userId = Number(res.insertId);
  if (res.affectedRows === 1) {
    await tx.run('INSERT INTO accounts (user_id, balance_cents, updated_at_ms) VALUES (?, 0, ?)', [userId, now]);
    return { userId, newUser: true, balanceCents: 0 };
  }
  return { userId, newUser: false, balanceCents: await balanceOf(tx, userId) };
}

export async function balanceOf(db: Executor, userId: number): Promise<number> {
  const rows = await db.rows<{ balance_cents: number }>('SELECT balance_cents FROM accounts WHERE user_id = ?', [userId]);
  return rows.length ? Number(rows[0].balance_cents) : 0;
}

/** Locks the account row until the transaction ends; returns its balance. */
export async function lockBalance(tx: Executor, userId: number): Promise<number> {
  const rows = await tx.rows<{ balance_cents: number }>('SELECT balance_cents FROM accounts WHERE user_id = ? FOR UPDATE', [userId]);
  if (!rows.length) throw new Error(`user ${userId} has no account`);
  return Number(rows[0].balance_cents);
}

/** Sets the balance of a locked account row. */
export async function setBalance(tx: Executor, userId: number, balanceCents: number, now: number): Promise<void> {
  await tx.run('UPDATE accounts SET balance_cents = ?, updated_at_ms = ? WHERE user_id = ?', [balanceCents, now, userId]);
}
