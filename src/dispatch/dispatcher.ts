// type id -> route. Decodes the body, checks the token, validates, runs the
// handler, and sends the answer back by connection id. Handlers answer with a
// message or throw a BikeError (whose code is the wire ErrorCode); anything
// else becomes INTERNAL here, logged once with its context.
import { performance } from 'node:perf_hooks';
import { BadRequestError, BikeError, InternalError, ShuttingDownError, UnknownTypeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Connection, FrameHandler } from '../net/connection.js';
import type { ConnectionRegistry } from '../net/registry.js';
import type { Pushes } from '../net/server.js';
import { encodeFrame } from '../protocol/header.js';
import type { FramingFault } from '../protocol/framer.js';
import { codec } from '../protocol/codec.js';
import { ErrorCode, NoticeKind, type ErrorMessage, type ServerNotice } from '../protocol/messages.js';
import { MessageType, replyType } from '../protocol/types.js';
import type { Route } from './route.js';

const errorCodec = codec<ErrorMessage>('Error');
const noticeCodec = codec<ServerNotice>('ServerNotice');

/** Resolves a session token to a user id, or throws UnauthenticatedError. */
export type Authenticate = (token: string) => Promise<number>;

export class Dispatcher implements FrameHandler, Pushes {
  private readonly table: (Route | undefined)[] = [];
  private draining = false;
  connections: ConnectionRegistry | null = null;

  constructor(
    routes: Route[],
    private readonly authenticate: Authenticate,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    for (const route of routes) this.table[route.entry.id] = route;
  }

  /** From now on every request is answered SHUTTING_DOWN. */
  startDrain(): void {
    this.draining = true;
  }

  onFrame(conn: Connection, type: number, requestId: number, body: Buffer): void {
    const started = performance.now();
    const route = this.table[type];
    let result: unknown;
    try {
      if (route === undefined) throw new UnknownTypeError(type);
      if (this.draining) throw new ShuttingDownError();
      // 0 is reserved for server pushes: an answer to it could not be matched.
      if (requestId === 0) throw new BadRequestError('requestId', 'must be 1..2^32-1 (0 is reserved for server pushes)');
      let message: { token?: string };
      try {
        message = route.request.decode(body) as { token?: string };
      } catch (err) {
        throw new BadRequestError('body', `does not decode as ${route.request.name} (${(err as Error).message})`);
      }
      if (this.log.isLevelEnabled('debug')) this.log.debug({ conn: conn.id, type: route.entry.request, requestId }, 'request');
      result = route.entry.auth
        ? this.authenticated(route, message, conn.remoteAddress)
        : route.run(message, { userId: 0, peer: conn.remoteAddress, token: '' });
    } catch (err) {
      this.answerError(conn.id, type, requestId, err, started);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => this.answerOk(conn.id, route!, requestId, reply, started),
        (err) => this.answerError(conn.id, type, requestId, err, started),
      );
    } else {
      this.answerOk(conn.id, route!, requestId, result, started);
    }
  }

  faultFrame(fault: FramingFault): Buffer {
    this.metrics.framesRejected.inc({ reason: fault.kind });
    if (fault.kind === 'bad_magic') return this.errorFrame(0, new BikeError(ErrorCode.BAD_FRAME, 'bad magic: expected 0x424B ("BK")'));
    return this.errorFrame(fault.requestId, new BikeError(ErrorCode.FRAME_TOO_LARGE, `body length ${fault.length} is over the limit`));
  }

  refusedFrame(): Buffer {
    return this.errorFrame(0, new BikeError(ErrorCode.SERVICE_UNAVAILABLE, 'too many connections on this instance', 1000));
  }

  drainNotice(): Buffer {
    const body = noticeCodec.encode({ kind: NoticeKind.SHUTTING_DOWN, message: 'instance is draining; reconnect and retry' });
    return encodeFrame(MessageType.ServerNotice, 0, body);
  }

  private async authenticated(route: Route, message: { token?: string }, peer: string): Promise<unknown> {
    const token = message.token ?? '';
    const userId = await this.authenticate(token);
    return route.run(message, { userId, peer, token });
  }

  private answerOk(connId: number, route: Route, requestId: number, reply: unknown, started: number): void {
    const frame = encodeFrame(replyType(route.entry.id), requestId, route.reply.encode(reply as object));
    this.connections!.answer(connId, frame);
    this.metrics.count(route.entry.request, 'OK', (performance.now() - started) / 1000);
  }

  private answerError(connId: number, type: number, requestId: number, err: unknown, started: number): void {
    const route = this.table[type];
    const typeLabel = route ? route.entry.request : 'unknown';
    let error: BikeError;
    if (err instanceof BikeError) {
      error = err;
      if (err.code === ErrorCode.UNKNOWN_TYPE) this.metrics.framesRejected.inc({ reason: 'unknown_type' });
      else if (err.code === ErrorCode.BAD_REQUEST) this.metrics.framesRejected.inc({ reason: 'bad_request' });
      if (this.log.isLevelEnabled('debug')) this.log.debug({ conn: connId, type: typeLabel, requestId, code: err.codeName, msg: err.message }, 'request refused');
    } else {
      error = new InternalError();
      this.log.error({ err, conn: connId, type: typeLabel, requestId }, 'request failed unexpectedly');
    }
    this.connections!.answer(connId, this.errorFrame(requestId, error));
    this.metrics.count(typeLabel, error.codeName, (performance.now() - started) / 1000);
  }

  private errorFrame(requestId: number, error: BikeError): Buffer {
    const body = errorCodec.encode({ code: error.code, message: error.message, retryAfterMs: error.retryAfterMs });
    return encodeFrame(MessageType.Error, requestId, body);
  }
}
