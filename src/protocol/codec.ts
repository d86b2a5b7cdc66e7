// Protobuf encode/decode of the bodies, by protobufjs from bikeshare.proto.
// protobufjs generates a specialised encoder/decoder per message at load time,
// so reflection costs nothing per call.
//
// 64-bit fields: protobufjs decodes them exactly (as `Long`, with the `long`
// package), and decode() then turns each into a JS number. Every id, amount
// and time this service makes stays far below 2^53, so numbers are exact
// there; a larger value from a peer becomes a number above
// Number.MAX_SAFE_INTEGER, which the field rules treat as out of range (an id
// no row can have, an amount over the limit). The one field that is echoed,
// Ping/Pong `nonce`, keeps all 64 bits: it stays a Long when it does not fit.
import { fileURLToPath } from 'node:url';
import Long from 'long';
import protobuf from 'protobufjs';

protobuf.util.Long = Long;
protobuf.configure();

const root = protobuf.loadSync(fileURLToPath(new URL('./bikeshare.proto', import.meta.url)));

/** 64-bit fields carried bit for bit instead of as numbers. */
const EXACT = new Set(['bikeshare.v1.Ping.nonce', 'bikeshare.v1.Pong.nonce']);

/** A 64-bit value as it may appear in an exact field. */
export type Uint64 = number | Long;

/** One message type of the schema. */
export interface MessageCodec<T> {
  readonly name: string;
  encode(message: Partial<T>): Uint8Array;
  /** Throws on bodies that do not decode (truncated, bad wire type, invalid UTF-8). */
  decode(body: Uint8Array): T;
}

type Fix = (message: Record<string, unknown>) => void;

const toNumber = (v: unknown) => (Long.isLong(v) ? v.toNumber() : v);
const toNumberIfSafe = (v: unknown) => {
  if (!Long.isLong(v)) return v;
  const n = v.toNumber();
  return Number.isSafeInteger(n) ? n : v;
};

/** The conversions one decoded message needs: its 64-bit fields, then its sub-messages. */
function fixesOf(type: protobuf.Type): Fix[] {
  const fixes: Fix[] = [];
  for (const field of type.fieldsArray) {
    const name = field.name;
    if (field.long) {
      const convert = EXACT.has(`${type.fullName.slice(1)}.${name}`) ? toNumberIfSafe : toNumber;
      fixes.push(field.repeated ? (m) => (m[name] = (m[name] as unknown[]).map(convert)) : (m) => (m[name] = convert(m[name])));
    } else if (field.resolvedType instanceof protobuf.Type) {
      const inner = fixesOf(field.resolvedType);
      if (!inner.length) continue;
      const fix = (sub: Record<string, unknown> | null | undefined) => {
        if (sub) for (const f of inner) f(sub);
      };
      fixes.push(field.repeated ? (m) => (m[name] as Record<string, unknown>[]).forEach(fix) : (m) => fix(m[name] as Record<string, unknown>));
    }
  }
  return fixes;
}

const cache = new Map<string, MessageCodec<unknown>>();

export function codec<T>(name: string): MessageCodec<T> {
  let c = cache.get(name);
  if (!c) {
    const type = root.lookupType(`bikeshare.v1.${name}`);
    type.resolveAll();
    const fixes = fixesOf(type);
    c = {
      name,
      encode: (message) => type.encode(message as protobuf.Message).finish(),
      decode: (body) => {
        const message = type.decode(body) as unknown as Record<string, unknown>;
        for (const fix of fixes) fix(message);
        return message as unknown as T;
      },
    };
    cache.set(name, c);
  }
  return c as MessageCodec<T>;
}
