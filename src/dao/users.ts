// users and their accounts (the balance lives on the user row).
import type { Executor } from '../stores/mysql.js';

export interface LoginRow {
  userId: number;
  newUser: boolean;
  balanceCents: number;
}

/**
 * The login upsert: one atomic INSERT ... ON DUPLICATE KEY UPDATE, never
 * "select then insert"; it creates the user and the account together.
 * `login_count + 1` makes every repeat a real change, so affectedRows tells
 * the two cases apart (1 = inserted, 2 = updated) even with CLIENT_FOUND_ROWS.
 */
export async function upsertUserForLogin(db: Executor, phone: string, now: number): Promise<LoginRow> {
  const res = await db.run(
    'INSERT INTO users (phone, balance_cents, created_at_ms, updated_at_ms, last_login_at_ms) VALUES (?, 0, ?, ?, ?) ' +
      'ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), last_login_at_ms = ?, login_count = login_count + 1',
    [phone, now, now, now, now],
  );
  const userId = Number(res.insertId);
  if (res.affectedRows === 1) return { userId, newUser: true, balanceCents: 0 };
  return { userId, newUser: false, balanceCents: await balanceOf(db, userId) };
}

export async function balanceOf(db: Executor, userId: number): Promise<number> {
  const rows = await db.rows<{ balance_cents: number }>('SELECT balance_cents FROM users WHERE id = ?', [userId]);
  return rows.length ? Number(rows[0].balance_cents) : 0;
}

/** Locks the user's account row until the transaction ends; returns its balance. */
export async function lockBalance(tx: Executor, userId: number): Promise<number> {
  const rows = await tx.rows<{ balance_cents: number }>('SELECT balance_cents FROM users WHERE id = ? FOR UPDATE', [userId]);
  if (!rows.length) throw new Error(`no user ${userId}`);
  return Number(rows[0].balance_cents);
}

/** Sets the balance of a locked account row. */
export async function setBalance(tx: Executor, userId: number, balanceCents: number, now: number): Promise<void> {
  await tx.run('UPDATE users SET balance_cents = ?, updated_at_ms = ? WHERE id = ?', [balanceCents, now, userId]);
}
