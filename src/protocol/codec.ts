// Protobuf encode/decode of the bodies, by protobufjs from bikeshare.proto.
// protobufjs generates a specialised encoder/decoder per message at load time,
// so reflection costs nothing per call. 64-bit fields decode as JS numbers:
// ids and cents stay far below 2^53.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const root = protobuf.loadSync(fileURLToPath(new URL('./bikeshare.proto', import.meta.url)));

/** One message type of the schema. */
export interface MessageCodec<T> {
  readonly name: string;
  encode(message: Partial<T>): Uint8Array;
  /** Throws on bodies that do not decode (truncated, bad wire type, invalid UTF-8). */
  decode(body: Uint8Array): T;
}

const cache = new Map<string, MessageCodec<unknown>>();

export function codec<T>(name: string): MessageCodec<T> {
  let c = cache.get(name);
  if (!c) {
    const type = root.lookupType(`bikeshare.v1.${name}`);
    c = {
      name,
      encode: (message) => type.encode(message as protobuf.Message).finish(),
      decode: (body) => type.decode(body) as unknown as T,
    };
    cache.set(name, c);
  }
  return c as MessageCodec<T>;
}
