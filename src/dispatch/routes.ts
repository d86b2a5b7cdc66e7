// The handler table: each request type, its field rules, and the service call.
import type { Clock } from '../clock.js';
import type { AccountService } from '../services/account.js';
import type { AuthService } from '../services/auth.js';
import type { BikeService } from '../services/bikes.js';
import type { RideService } from '../services/rides.js';
import * as m from '../protocol/messages.js';
import { REQUESTS, type RequestName } from '../protocol/types.js';
import { route, type Route } from './route.js';
import * as v from './validate.js';

export interface Services {
  auth: AuthService;
  account: AccountService;
  bikes: BikeService;
  rides: RideService;
  clock: Clock;
}

const entry = (name: RequestName) => REQUESTS.find((r) => r.request === name)!;
const none = () => undefined;

export function routes(s: Services): Route[] {
  return [
    route<m.Ping, m.Pong>(entry('Ping'), none, (msg) => ({ nonce: msg.nonce, serverTimeMs: s.clock.now() })),
    route<m.RequestCode, m.RequestCodeReply>(
      entry('RequestCode'),
      (msg) => v.phone(msg.phone),
      (msg, call) => s.auth.requestCode(msg.phone, call.peer),
    ),
    route<m.Login, m.LoginReply>(
      entry('Login'),
      (msg) => {
        v.phone(msg.phone);
        v.sixDigits(msg.code);
      },
      (msg) => s.auth.login(msg.phone, msg.code),
    ),
    route<m.Logout, m.LogoutReply>(entry('Logout'), none, async (_msg, call) => {
      await s.auth.logout(call.token);
      return {};
    }),
    route<m.GetBalance, m.Balance>(entry('GetBalance'), none, async (_msg, call) => ({ balanceCents: await s.account.balance(call.userId) })),
    route<m.Recharge, m.RechargeReply>(
      entry('Recharge'),
      (msg) => {
        v.intRange(msg.amountCents, 1, 1_000_000, 'amount_cents');
        v.utf8Bytes(msg.idempotencyKey, 64, 'idempotency_key');
      },
      (msg, call) => s.account.recharge(call.userId, msg.amountCents, msg.idempotencyKey),
    ),
    route<m.ListAccountRecords, m.AccountRecordPage>(
      entry('ListAccountRecords'),
      (msg) => v.limit(msg.limit),
      (msg, call) => s.account.records(call.userId, msg.cursor, v.limit(msg.limit)),
    ),
    route<m.FindNearbyBikes, m.NearbyBikes>(
      entry('FindNearbyBikes'),
      (msg) => {
        v.lat(msg.lat);
        v.lng(msg.lng);
        v.intRange(msg.radiusM, 1, 5000, 'radius_m');
        v.limit(msg.limit);
      },
      async (msg) => ({ bikes: await s.bikes.nearby(msg.lat, msg.lng, msg.radiusM, v.limit(msg.limit)) }),
    ),
    route<m.UnlockBike, m.RideStarted>(
      entry('UnlockBike'),
      (msg) => v.id(msg.bikeId, 'bike_id'),
      (msg, call) => s.rides.unlock(call.userId, msg.bikeId),
    ),
    route<m.EndRide, m.RideEnded>(
      entry('EndRide'),
      (msg) => {
        v.id(msg.rideId, 'ride_id');
        v.lat(msg.lat);
        v.lng(msg.lng);
      },
      (msg, call) => s.rides.end(call.userId, msg.rideId, msg.lat, msg.lng),
    ),
    route<m.ListRides, m.RidePage>(
      entry('ListRides'),
      (msg) => v.limit(msg.limit),
      (msg, call) => s.rides.list(call.userId, msg.cursor, v.limit(msg.limit)),
    ),
  ];
}
