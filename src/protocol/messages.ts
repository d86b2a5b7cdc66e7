// TypeScript shapes of the messages in bikeshare.proto (protobufjs camelCase
// field names; 64-bit integers as JS numbers, but the echoed Ping/Pong nonce
// keeps all 64 bits: see codec.ts).
import type { Uint64 } from './codec.js';

export enum ErrorCode {
  ERROR_CODE_UNSPECIFIED = 0,
  BAD_FRAME = 1,
  FRAME_TOO_LARGE = 2,
  UNKNOWN_TYPE = 3,
  BAD_REQUEST = 4,
  UNAUTHENTICATED = 5,
  RATE_LIMITED = 6,
  CODE_INVALID = 7,
  BIKE_NOT_FOUND = 8,
  BIKE_UNAVAILABLE = 9,
  RIDE_ALREADY_ACTIVE = 10,
  RIDE_NOT_FOUND = 11,
  INSUFFICIENT_BALANCE = 12,
  SERVICE_UNAVAILABLE = 13,
  SHUTTING_DOWN = 14,
  INTERNAL = 15,
}

export enum NoticeKind {
  KIND_UNSPECIFIED = 0,
  SHUTTING_DOWN = 1,
}

export enum RecordKind {
  RECORD_KIND_UNSPECIFIED = 0,
  RECHARGE = 1,
  RIDE_FARE = 2,
}

export enum RideStatus {
  RIDE_STATUS_UNSPECIFIED = 0,
  ACTIVE = 1,
  FINISHED = 2,
}

export interface ErrorMessage { code: ErrorCode; message: string; retryAfterMs: number }
export interface Ping { nonce: Uint64 }
export interface Pong { nonce: Uint64; serverTimeMs: number }
export interface ServerNotice { kind: NoticeKind; message: string }

export interface RequestCode { phone: string }
export interface RequestCodeReply { ttlSeconds: number; resendAfterSeconds: number; debugCode: string }
export interface Login { phone: string; code: string }
export interface LoginReply { token: string; userId: number; expiresAtMs: number; balanceCents: number; newUser: boolean }
export interface Logout { token: string }
export type LogoutReply = Record<string, never>;

export interface GetBalance { token: string }
export interface Balance { balanceCents: number }
export interface Recharge { token: string; amountCents: number; idempotencyKey: string }
export interface RechargeReply { balanceCents: number; recordId: number; duplicate: boolean }

export interface AccountRecord {
  recordId: number;
  kind: RecordKind;
  amountCents: number;
  balanceAfterCents: number;
  createdAtMs: number;
  rideId: number;
}
export interface ListAccountRecords { token: string; cursor: string; limit: number }
export interface AccountRecordPage { records: AccountRecord[]; nextCursor: string }

export interface FindNearbyBikes { lat: number; lng: number; radiusM: number; limit: number }
export interface NearbyBike { bikeId: number; lat: number; lng: number; distanceM: number }
export interface NearbyBikes { bikes: NearbyBike[] }

export interface UnlockBike { token: string; bikeId: number }
export interface RideStarted { rideId: number; bikeId: number; startedAtMs: number }
export interface EndRide { token: string; rideId: number; lat: number; lng: number }
export interface RideEnded { rideId: number; durationSeconds: number; fareCents: number; balanceCents: number }

export interface Ride {
  rideId: number;
  bikeId: number;
  status: RideStatus;
  startedAtMs: number;
  endedAtMs: number;
  durationSeconds: number;
  fareCents: number;
}
export interface ListRides { token: string; cursor: string; limit: number }
export interface RidePage { rides: Ride[]; nextCursor: string }
