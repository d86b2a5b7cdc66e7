// Opaque keyset cursors: the id of the last item of a page, versioned and
// base64url-encoded. Because pages are "id below the cursor", new items never
// shift a page, so walking all pages returns every item exactly once.
import { BadRequestError } from '../errors.js';

export function encodeCursor(kind: 'r' | 'd', lastId: number): string {
  return Buffer.from(`${kind}1.${lastId}`).toString('base64url');
}

/** 0 for the first page; BadRequestError for anything this server did not write. */
export function decodeCursor(kind: 'r' | 'd', cursor: string): number {
  if (cursor === '') return 0;
  const m = /^([rd])1\.([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  const id = m ? Number(m[2]) : 0;
  if (!m || m[1] !== kind || !Number.isSafeInteger(id) || encodeCursor(kind, id) !== cursor) throw new BadRequestError('cursor', 'malformed');
  return id;
}

/** Cuts a page fetched with limit + 1 rows and makes its next cursor. */
export function page<T extends { id: number }>(kind: 'r' | 'd', rows: T[], limit: number): { items: T[]; nextCursor: string } {
  if (rows.length <= limit) return { items: rows, nextCursor: '' };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor(kind, items[items.length - 1].id) };
}
