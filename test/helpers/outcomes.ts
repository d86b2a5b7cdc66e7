// Assertions on answers: a wire error code, tallies of settled races, and
// plain copies of decoded messages for deepEqual.
import assert from 'node:assert/strict';
import { ErrorCode, ServerError } from '../../src/client/client.js';

/** Awaits `p` and asserts it failed with the wire error `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, what = ''): Promise<ServerError> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    assert.ok(err instanceof ServerError, `${what} expected ${ErrorCode[code]}, got ${String(err)}`);
    assert.equal(err.codeName, ErrorCode[code], `${what} expected ${ErrorCode[code]}, got ${err.message}`);
    return err;
  }
  assert.fail(`${what} expected ${ErrorCode[code]}, got a success: ${JSON.stringify(value)}`);
}

/** The wire code name of a settled promise (OK for a success). */
export function outcome(r: PromiseSettledResult<unknown>): string {
  if (r.status === 'fulfilled') return 'OK';
  return r.reason instanceof ServerError ? r.reason.codeName : `client:${String(r.reason)}`;
}

/** How many of the settled promises ended with each outcome. */
export function tally(results: PromiseSettledResult<unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[outcome(r)] = (counts[outcome(r)] ?? 0) + 1;
  return counts;
}

/**
 * A plain copy of a decoded message. protobufjs instances are not plain
 * objects, and fields at their default (0, false, '') live on the prototype,
 * so a spread would drop them: every field of the message type is copied.
 */
export function plain<T extends object>(m: T): T {
  const fields = (m as { $type?: { fields: Record<string, unknown> } }).$type?.fields;
  const out: Record<string, unknown> = {};
  for (const k of fields ? Object.keys(fields) : Object.keys(m)) out[k] = (m as Record<string, unknown>)[k];
  return out as T;
}
