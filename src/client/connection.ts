// One SDK connection: requests multiplexed by requestId, answers matched in
// any order, a timeout per request, and a bound on requests in flight (the
// rest wait in a queue instead of flooding the server).
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter, once } from 'node:events';
import { Framer } from '../protocol/framer.js';
import { encodeFrame, MAX_REQUEST_ID, REPLY_BIT } from '../protocol/header.js';
import { codec } from '../protocol/codec.js';
import { MessageType } from '../protocol/types.js';
import { ErrorCode, type ErrorMessage, type ServerNotice } from '../protocol/messages.js';
import { ClientError, ServerError } from './errors.js';

export interface ConnectOptions {
  host: string;
  port: number;
  /** TLS options, or true for TLS with defaults. */
  tls?: boolean | tls.ConnectionOptions;
  connectTimeoutMs?: number;
  /** Requests in flight at once; more wait their turn. Default 64 (the server's default). */
  maxInflight?: number;
}

interface Pending {
  type: number;
  resolve: (body: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
}

const errorCodec = codec<ErrorMessage>('Error');
const noticeCodec = codec<ServerNotice>('ServerNotice');

/** Events: 'notice' (ServerNotice), 'close'. */
export class ClientConnection extends EventEmitter {
  private readonly pending = new Map<number, Pending>();
  private readonly queue: (() => void)[] = [];
  private nextId = 1;
  private corked = false;
  private closedError: Error | null = null;
  /** Set once the server said it is draining: send nothing new here. */
  draining = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly maxInflight: number,
  ) {
    super();
    const framer = new Framer(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      const fault = framer.push(chunk, (type, requestId, body) => {
        this.onFrame(type, requestId, body);
        return true;
      });
      if (fault) socket.destroy(new ClientError('PROTOCOL', `bad frame from server (${fault.kind})`));
    });
    socket.on('error', (err) => (this.closedError ??= err));
    socket.on('close', () => this.onClose());
  }

  static async open(options: ConnectOptions): Promise<ClientConnection> {
    const socket = options.tls
      ? tls.connect({ host: options.host, port: options.port, ...(options.tls === true ? {} : options.tls) })
      : net.connect({ host: options.host, port: options.port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new ClientError('CONNECT_FAILED', 'connect timed out')), options.connectTimeoutMs ?? 5000);
    try {
      await once(socket, options.tls ? 'secureConnect' : 'connect');
    } catch (err) {
      throw err instanceof ClientError ? err : new ClientError('CONNECT_FAILED', (err as Error).message);
    } finally {
      clearTimeout(timer);
    }
    socket.setNoDelay(true);
    return new ClientConnection(socket, options.maxInflight ?? 64);
  }

  get inflight(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  /** Sends one request body and resolves with the answer body (or rejects with ServerError/ClientError). */
  async call(type: number, body: Uint8Array, timeoutMs: number): Promise<Buffer> {
    if (this.pending.size >= this.maxInflight) await new Promise<void>((go) => this.queue.push(go));
    // Not sent on a draining connection, whose server may FIN before reading it:
    // refused like the server would (no effect), so BikeClient sends it anew elsewhere.
    if (this.draining) throw new ServerError(ErrorCode.SHUTTING_DOWN, 'not sent: the connection is draining');
    if (this.socket.destroyed) throw new ClientError('CLOSED', this.closedError?.message ?? 'connection closed');
    const requestId = this.nextId;
    this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1;
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { type, resolve, reject, timer: null };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.settle(requestId);
          reject(new ClientError('TIMEOUT', `no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(requestId, p);
      // Requests made in one turn of the event loop leave in one writev.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(uncork, this);
      }
      this.socket.write(encodeFrame(type, requestId, body));
    });
  }

  /** @internal the end of a corked batch */
  flush(): void {
    this.corked = false;
    this.socket.uncork();
  }

  /** Raw bytes, for tests of the server's framing. */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onFrame(type: number, requestId: number, body: Buffer): void {
    if (type === MessageType.ServerNotice && requestId === 0) {
      this.draining = true;
      for (const go of this.queue.splice(0)) go(); // the queued requests go elsewhere now
      this.emit('notice', noticeCodec.decode(body));
      return;
    }
    if (requestId === 0) {
      // A connection-level error (bad frame, too many connections): the server closes next.
      if (type === MessageType.Error) {
        const e = errorCodec.decode(body);
        this.closedError = new ServerError(e.code, e.message, e.retryAfterMs);
      }
      return;
    }
    const p = this.pending.get(requestId);
    if (!p) return; // timed out already
    this.settle(requestId);
    if (type === MessageType.Error) {
      const e = errorCodec.decode(body);
      p.reject(new ServerError(e.code, e.message, e.retryAfterMs));
    } else if (type === (p.type | REPLY_BIT)) {
      p.resolve(body);
    } else {
      p.reject(new ClientError('PROTOCOL', `answer type 0x${type.toString(16)} to request type 0x${p.type.toString(16)}`));
    }
  }

  private settle(requestId: number): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(requestId);
    this.queue.shift()?.();
  }

  private onClose(): void {
    const err = this.closedError instanceof ServerError ? this.closedError : new ClientError('CLOSED', this.closedError?.message ?? 'connection closed by server');
    for (const [id, p] of this.pending) {
      this.settle(id);
      p.reject(err);
    }
    for (const go of this.queue.splice(0)) go();
    this.emit('close', err);
  }
}

function uncork(conn: ClientConnection): void {
  conn.flush();
}
