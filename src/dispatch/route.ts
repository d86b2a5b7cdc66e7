// What one request type needs: its codecs, whether it carries a token, and
// `run` (validate the fields, then call the service).
import type { MessageCodec } from '../protocol/codec.js';
import { codec } from '../protocol/codec.js';
import type { TypeEntry } from '../protocol/types.js';

/** Who is asking: the session's user (0 when the type needs no token) and the remote address. */
export interface Call {
  userId: number;
  peer: string;
  token: string;
}

export interface Route {
  entry: TypeEntry;
  request: MessageCodec<unknown>;
  reply: MessageCodec<unknown>;
  run(message: unknown, call: Call): unknown;
}

/** Builds a route: `validate` throws BadRequestError; `handle` answers or throws a BikeError. */
export function route<Req, Res>(
  entry: TypeEntry,
  validate: (message: Req) => void,
  handle: (message: Req, call: Call) => Res | Promise<Res>,
): Route {
  return {
    entry,
    request: codec<Req>(entry.request) as MessageCodec<unknown>,
    reply: codec<Res>(entry.reply) as MessageCodec<unknown>,
    run(message, call) {
      validate(message as Req);
      return handle(message as Req, call);
    },
  };
}
