// One client connection: owns its socket, framer, in-flight count and close
// reason, and releases all of it exactly once however the socket ends.
import type { Socket } from 'node:net';
import { Framer, type FramingFault } from '../protocol/framer.js';

export interface ConnectionLimits {
  maxBodyBytes: number;
  maxInflightPerConnection: number;
  maxWriteBufferBytes: number;
}

/** What a connection hands each complete frame to (the dispatcher). */
export interface FrameHandler {
  onFrame(conn: Connection, type: number, requestId: number, body: Buffer): void;
  /** The Error frame for a framing fault (sent after the answers still owed). */
  faultFrame(fault: FramingFault): Buffer;
}

export type CloseReason =
  | 'client_closed'
  | 'socket_error'
  | 'bad_magic'
  | 'too_large'
  | 'idle'
  | 'slow_reader'
  | 'drained'
  | 'forced';

export class Connection {
  readonly remoteAddress: string;
  /** ms timestamp of the last bytes received (for the idle sweep). */
  lastActivity = Date.now();
  /** ms timestamp at which the current partial frame began, 0 when none. */
  partialSince = 0;
  inflight = 0;
  closeReason: CloseReason | null = null;
  /** ms timestamp of our FIN, 0 before it. */
  endedAt = 0;

  private readonly framer: Framer;
  private readingPaused = false;
  private corked = false;
  private stopped = false; // a framing fault: no more frames are read
  private closeWhenIdle = false; // FIN as soon as nothing is in flight
  private draining = false; // every frame read now is refused at once, holding no in-flight slot
  private finalFrame: Buffer | null = null; // written just before the FIN
  private endReason: CloseReason | null = null; // why we sent the FIN
  private ended = false;
  private readonly sink = (type: number, requestId: number, body: Buffer): boolean => {
    if (this.stopped) return false;
    this.inflight++;
    this.partialSince = 0; // a whole frame was read: the next one's clock starts afresh
    this.handler.onFrame(this, type, requestId, body);
    return this.canRead();
  };

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly limits: ConnectionLimits,
    private readonly handler: FrameHandler,
    private readonly onRelease: (conn: Connection) => void,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.framer = new Framer(limits.maxBodyBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.release('socket_error'));
    socket.on('close', () => this.release('client_closed'));
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  get hasPartialFrame(): boolean {
    return this.framer.hasPartialFrame;
  }

  /** The answer to one request read from this connection. */
  answer(frame: Buffer): void {
    this.inflight--;
    this.write(frame);
    if (this.inflight === 0 && this.closeWhenIdle) this.finish();
    else this.maybeResume();
  }

  /** A server push (requestId 0) that answers nothing. */
  push(frame: Buffer): void {
    this.write(frame);
  }

  /**
   * The drain began: sends the notice, and reads on past the in-flight bound,
   * so that requests the client sent before it (maybe still unread behind a
   * slow one) are answered, if only with SHUTTING_DOWN, before the FIN.
   */
  startDrain(notice: Buffer): void {
    this.draining = true;
    this.push(notice);
    this.maybeResume();
  }

  /** Half-closes once every request already read is answered (the drain). */
  endWhenIdle(reason: CloseReason): void {
    this.endReason ??= reason;
    this.closeWhenIdle = true;
    if (this.inflight === 0) this.finish();
  }

  /** Closes at once, dropping what is unsent. */
  destroy(reason: CloseReason): void {
    if (this.closed) return;
    this.release(reason);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const now = Date.now();
    this.lastActivity = now;
    if (this.stopped) return;
    const fault = this.framer.push(chunk, this.sink);
    if (fault) return this.onFault(fault);
    this.trackPartial(now);
    if (!this.canRead()) this.pauseReading();
  }

  // The incomplete-frame clock (idle sweep) runs only while we wait on the
  // client: not while this connection's requests fill every in-flight slot,
  // when unread bytes are whole frames we chose not to read yet.
  private trackPartial(now: number): void {
    const busy = this.inflight >= this.limits.maxInflightPerConnection;
    this.partialSince = this.framer.hasPartialFrame && !busy ? this.partialSince || now : 0;
  }

  // The stream can no longer be trusted: answer what was read, then the Error, then FIN.
  private onFault(fault: FramingFault): void {
    this.stopped = true;
    this.socket.pause();
    this.finalFrame = this.handler.faultFrame(fault);
    this.endWhenIdle(fault.kind);
  }

  private canRead(): boolean {
    // Unsent answers do not pause reading (only the in-flight bound does): a
    // client that does not read its answers must reach maxWriteBufferBytes
    // and be closed (write()), not be held open until the idle sweep.
    return this.draining || this.inflight < this.limits.maxInflightPerConnection;
  }

  private pauseReading(): void {
    if (!this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (!this.readingPaused || this.stopped || !this.canRead()) return;
    this.readingPaused = false;
    // Frames that arrived before the pause come first.
    const fault = this.framer.resume(this.sink);
    if (fault) return this.onFault(fault);
    this.trackPartial(Date.now());
    if (this.canRead()) this.socket.resume();
    else this.pauseReading();
  }

  private write(frame: Buffer): void {
    if (this.closed || this.ended) return;
    // Answers produced in one turn of the event loop leave in one writev.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.socket.write(frame); // unsent bytes are bounded below, not waited for
    if (this.socket.writableLength > this.limits.maxWriteBufferBytes) this.destroy('slow_reader');
  }

  /** @internal the end of a corked batch */
  flush(): void {
    this.corked = false;
    if (!this.closed) this.socket.uncork();
  }

  private finish(): void {
    if (this.ended || this.closed) return;
    if (this.finalFrame) this.write(this.finalFrame);
    this.ended = true;
    this.endedAt = Date.now();
    this.flush();
    this.socket.end();
  }

  private release(reason: CloseReason): void {
    if (this.closed) return;
    this.closeReason = this.endReason ?? reason;
    this.onRelease(this);
  }
}

function uncork(conn: Connection): void {
  conn.flush();
}
