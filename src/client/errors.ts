// Errors the SDK raises. ServerError carries the wire ErrorCode; ClientError
// is about the connection itself (timeout, closed, refused).
import { ErrorCode } from '../protocol/messages.js';

export class ServerError extends Error {
  readonly retryAfterMs: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    retryAfterMs = 0,
  ) {
    super(`${ErrorCode[code] ?? code}: ${message}`);
    this.name = 'ServerError';
    this.retryAfterMs = retryAfterMs;
  }
  get codeName(): string {
    return ErrorCode[this.code] ?? String(this.code);
  }
}

export type ClientErrorCode = 'TIMEOUT' | 'CLOSED' | 'CONNECT_FAILED' | 'PROTOCOL';

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'ClientError';
  }
  get codeName(): string {
    return this.code;
  }
}
