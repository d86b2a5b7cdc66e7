// Splits a byte stream into frames. A two-state machine (reading header,
// reading body) over the bytes received so far: the announced length is checked
// against the limit as soon as the header is complete and is never allocated
// up front, so a hostile length costs nothing. Chunks of an incomplete unit
// are only listed, and joined once the unit is whole, so a body trickling in
// byte by byte costs O(n), not O(n^2).
import { HEADER_BYTES, MAGIC } from './header.js';

export type FramingFault =
  | { kind: 'bad_magic'; requestId: 0 }
  | { kind: 'too_large'; requestId: number; length: number };

/**
 * Receives each complete frame. `body` is a view into received memory: decode
 * it before returning. Return false to stop delivery (backpressure); the rest
 * stays buffered until `resume`.
 */
export type FrameSink = (type: number, requestId: number, body: Buffer) => boolean;

const EMPTY = Buffer.alloc(0);

export class Framer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bodyLength = -1; // -1 while reading a header
  private type = 0;
  private requestId = 0;
  private broken: FramingFault | null = null;

  constructor(private readonly maxBodyBytes: number) {}

  /** True while part of a frame has arrived and the rest has not. */
  get hasPartialFrame(): boolean {
    return this.buffered > 0 || this.bodyLength >= 0;
  }

  /** The fault that stopped this framer; once set, input is ignored. */
  get fault(): FramingFault | null {
    return this.broken;
  }

  /** Adds received bytes and delivers what is complete. Returns the fault, if the stream broke. */
  push(chunk: Buffer, sink: FrameSink): FramingFault | null {
    if (this.broken) return this.broken;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    return this.resume(sink);
  }

  /** Delivers buffered frames until the sink says stop or the bytes run out. */
  resume(sink: FrameSink): FramingFault | null {
    if (this.broken) return this.broken;
    if (this.buffered < this.needed()) return null;
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    let pos = 0;
    let go = true;
    while (go) {
      if (this.bodyLength < 0) {
        if (buf.length - pos < HEADER_BYTES) break;
        if (buf.readUInt16BE(pos) !== MAGIC) {
          this.broken = { kind: 'bad_magic', requestId: 0 };
          break;
        }
        const length = buf.readUInt32BE(pos + 8);
        if (length > this.maxBodyBytes) {
          this.broken = { kind: 'too_large', requestId: buf.readUInt32BE(pos + 4), length };
          break;
        }
        this.type = buf.readUInt16BE(pos + 2);
        this.requestId = buf.readUInt32BE(pos + 4);
        this.bodyLength = length;
        pos += HEADER_BYTES;
      }
      if (buf.length - pos < this.bodyLength) break;
      const body = buf.subarray(pos, pos + this.bodyLength);
      pos += this.bodyLength;
      this.bodyLength = -1;
      go = sink(this.type, this.requestId, body);
    }
    if (this.broken || pos >= buf.length) {
      this.chunks = [];
      this.buffered = 0;
    } else {
      // Keep the unconsumed tail, copied when small so a large chunk can be freed.
      const tail = buf.subarray(pos);
      this.chunks = [tail.length < 4096 ? Buffer.from(tail) : tail];
      this.buffered = tail.length;
    }
    buf = EMPTY;
    return this.broken;
  }

  private needed(): number {
    return this.bodyLength < 0 ? HEADER_BYTES : this.bodyLength;
  }
}
