// The one registry of wire type ids: id -> request and answer message names.
import { REPLY_BIT } from './header.js';

export const MessageType = {
  Error: 0x0001,
  Ping: 0x0002,
  ServerNotice: 0x0003,
  RequestCode: 0x0010,
  Login: 0x0011,
  Logout: 0x0012,
  GetBalance: 0x0020,
  Recharge: 0x0021,
  ListAccountRecords: 0x0022,
  FindNearbyBikes: 0x0030,
  UnlockBike: 0x0031,
  EndRide: 0x0032,
  ListRides: 0x0033,
} as const;

export type RequestName = Exclude<keyof typeof MessageType, 'Error' | 'ServerNotice'>;

export interface TypeEntry {
  /** The request type id (the answer is `id | 0x8000`). */
  id: number;
  request: RequestName;
  /** proto message name of the answer */
  reply: string;
  /** whether field 1 is a session token that must be valid */
  auth: boolean;
}

export const REQUESTS: readonly TypeEntry[] = [
  { id: MessageType.Ping, request: 'Ping', reply: 'Pong', auth: false },
  { id: MessageType.RequestCode, request: 'RequestCode', reply: 'RequestCodeReply', auth: false },
  { id: MessageType.Login, request: 'Login', reply: 'LoginReply', auth: false },
  { id: MessageType.Logout, request: 'Logout', reply: 'LogoutReply', auth: true },
  { id: MessageType.GetBalance, request: 'GetBalance', reply: 'Balance', auth: true },
  { id: MessageType.Recharge, request: 'Recharge', reply: 'RechargeReply', auth: true },
  { id: MessageType.ListAccountRecords, request: 'ListAccountRecords', reply: 'AccountRecordPage', auth: true },
  { id: MessageType.FindNearbyBikes, request: 'FindNearbyBikes', reply: 'NearbyBikes', auth: false },
  { id: MessageType.UnlockBike, request: 'UnlockBike', reply: 'RideStarted', auth: true },
  { id: MessageType.EndRide, request: 'EndRide', reply: 'RideEnded', auth: true },
  { id: MessageType.ListRides, request: 'ListRides', reply: 'RidePage', auth: true },
];

export const replyType = (requestType: number): number => requestType | REPLY_BIT;

/** Request type name for metrics labels ("unknown" for ids outside the table). */
export function typeName(id: number): string {
  return REQUESTS.find((r) => r.id === id)?.request ?? 'unknown';
}
