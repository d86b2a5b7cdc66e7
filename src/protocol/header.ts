// The fixed 12-byte frame header (docs/protocol.md section 2). Big-endian throughout.

export const HEADER_BYTES = 12;
export const MAGIC = 0x424b; // "BK"
/** Answers carry the request type with this bit set. */
export const REPLY_BIT = 0x8000;
export const MAX_REQUEST_ID = 0xffffffff;

export interface FrameHeader {
  type: number;
  requestId: number;
  length: number;
}

/** Writes a header into `target` at `offset` (no allocation). */
export function writeHeader(target: Buffer, offset: number, type: number, requestId: number, length: number): void {
  target.writeUInt16BE(MAGIC, offset);
  target.writeUInt16BE(type, offset + 2);
  target.writeUInt32BE(requestId, offset + 4);
  target.writeUInt32BE(length, offset + 8);
}

/** Reads a header; the caller has checked that 12 bytes are there. Magic is not checked here. */
export function readHeader(source: Buffer, offset = 0): FrameHeader & { magic: number } {
  return {
    magic: source.readUInt16BE(offset),
    type: source.readUInt16BE(offset + 2),
    requestId: source.readUInt32BE(offset + 4),
    length: source.readUInt32BE(offset + 8),
  };
}

/** One whole frame (header and body) in a single buffer, ready for one socket write. */
export function encodeFrame(type: number, requestId: number, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  writeHeader(frame, 0, type, requestId, body.length);
  frame.set(body, HEADER_BYTES);
  return frame;
}
