// Field rules of docs/protocol.md section 2 and 5. Each check throws a
// BadRequestError naming the field and why.
import { BadRequestError } from '../errors.js';

const PHONE = /^\+?[1-9][0-9]{6,14}$/;
const SIX_DIGITS = /^[0-9]{6}$/;

export const MAX_LIMIT = 100;
export const DEFAULT_LIMIT = 20;

export function phone(value: string, field = 'phone'): string {
  if (!PHONE.test(value)) throw new BadRequestError(field, 'must match ^\\+?[1-9][0-9]{6,14}$');
  return value;
}

export function sixDigits(value: string, field = 'code'): string {
  if (!SIX_DIGITS.test(value)) throw new BadRequestError(field, 'must be exactly six ASCII digits');
  return value;
}

export function intRange(value: number, min: number, max: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new BadRequestError(field, `must be ${min}..${max}`);
  return value;
}

/** Any non-zero uint64; one beyond 2^53 arrives as a number above MAX_SAFE_INTEGER (no row has such an id). */
export function id(value: number, field: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new BadRequestError(field, 'must be a non-zero id');
  return value;
}

/** 0 means the default; otherwise 1..100. */
export function limit(value: number, field = 'limit'): number {
  if (value === 0) return DEFAULT_LIMIT;
  return intRange(value, 1, MAX_LIMIT, field);
}

export function lat(value: number, field = 'lat'): number {
  if (!Number.isFinite(value) || value < -90 || value > 90) throw new BadRequestError(field, 'must be finite in [-90, 90]');
  return value;
}

export function lng(value: number, field = 'lng'): number {
  if (!Number.isFinite(value) || value < -180 || value > 180) throw new BadRequestError(field, 'must be finite in [-180, 180]');
  return value;
}

/** A string of 1..max bytes of UTF-8. */
export function utf8Bytes(value: string, max: number, field: string): string {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < 1 || bytes > max) throw new BadRequestError(field, `must be 1..${max} bytes of UTF-8`);
  return value;
}
