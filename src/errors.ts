// One error hierarchy for the whole service. Every class has a stable `code`
// that IS the wire ErrorCode: whatever a handler throws reaches the client as
// `Error{code}` without translation tables.
import { ErrorCode } from './protocol/messages.js';

export class BikeError extends Error {
  readonly code: ErrorCode;
  /** Sent as `retry_after_ms`; 0 when there is nothing to wait for. */
  readonly retryAfterMs: number;
  constructor(code: ErrorCode, message: string, retryAfterMs = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
  /** Stable name of the code, e.g. "BAD_REQUEST" (also the metrics label). */
  get codeName(): string {
    return ErrorCode[this.code];
  }
}

export class BadRequestError extends BikeError {
  constructor(field: string, why: string) {
    super(ErrorCode.BAD_REQUEST, `${field}: ${why}`);
  }
}
export class UnknownTypeError extends BikeError {
  constructor(type: number) {
    super(ErrorCode.UNKNOWN_TYPE, `unknown message type 0x${type.toString(16).padStart(4, '0')}`);
  }
}
export class UnauthenticatedError extends BikeError {
  constructor() {
    super(ErrorCode.UNAUTHENTICATED, 'missing, unknown or expired token');
  }
}
export class RateLimitedError extends BikeError {
  constructor(what: string, retryAfterMs: number) {
    super(ErrorCode.RATE_LIMITED, what, Math.max(1, Math.ceil(retryAfterMs)));
  }
}
export class CodeInvalidError extends BikeError {
  constructor() {
    super(ErrorCode.CODE_INVALID, 'wrong, expired or used-up verification code');
  }
}
export class ServiceUnavailableError extends BikeError {
  constructor(what: string, options?: { cause?: unknown }, retryAfterMs = 1000) {
    super(ErrorCode.SERVICE_UNAVAILABLE, what, retryAfterMs, options);
  }
}
export class ShuttingDownError extends BikeError {
  constructor() {
    super(ErrorCode.SHUTTING_DOWN, 'this instance is draining; reconnect and retry');
  }
}
export class InternalError extends BikeError {
  constructor() {
    super(ErrorCode.INTERNAL, 'internal error');
  }
}

/** Business outcomes with nothing to add beyond their code. */
export const businessError = (code: ErrorCode, message: string): BikeError => new BikeError(code, message);
