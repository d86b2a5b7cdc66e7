// A raw protocol connection for drills and tests that must see exactly what
// the server sends: every frame (with its requestId), the FIN, the close.
import net from 'node:net';
import { once } from 'node:events';
import { Framer } from '../../src/protocol/framer.js';
import { encodeFrame } from '../../src/protocol/header.js';
import { codec } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/types.js';
import { ErrorCode, type ErrorMessage } from '../../src/protocol/messages.js';

export interface Frame {
  type: number;
  requestId: number;
  body: Buffer;
}

const errorCodec = codec<ErrorMessage>('Error');

/** The Error carried by a frame, or null when it is not an Error frame. */
export function errorOf(frame: Frame): ErrorMessage | null {
  return frame.type === MessageType.Error ? errorCodec.decode(frame.body) : null;
}

export const errorName = (code: number): string => ErrorCode[code] ?? String(code);

/** One request frame, its body encoded from `message` with the named message type. */
export function frameOf(type: number, requestId: number, messageName: string, message: object): Buffer {
  return encodeFrame(type, requestId, codec<object>(messageName).encode(message));
}

export class RawConn {
  readonly frames: Frame[] = [];
  /** set when the server's FIN arrived */
  gotEnd = false;
  /** set once the socket is fully closed */
  closed = false;
  error: Error | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    const framer = new Framer(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      framer.push(chunk, (type, requestId, body) => {
        this.frames.push({ type, requestId, body: Buffer.from(body) });
        return true;
      });
      this.wake();
    });
    socket.on('end', () => {
      this.gotEnd = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawConn> {
    const socket = net.connect({ port, host, noDelay: true });
    await once(socket, 'connect');
    return new RawConn(socket);
  }

  /** Wraps a socket that is already connected (or connecting). */
  static wrap(socket: net.Socket): RawConn {
    return new RawConn(socket);
  }

  write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(bytes);
  }

  /** Resolves when `check` holds (re-checked on every frame, FIN and close) or after `timeoutMs` with its last value. */
  async until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return true;
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** The next unread frame (frames are consumed in arrival order), or null after `timeoutMs` or once closed. */
  async next(timeoutMs: number): Promise<Frame | null> {
    await this.until(() => this.frames.length > 0 || this.closed, timeoutMs);
    return this.frames.shift() ?? null;
  }

  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
