// `bikeshare demo`: a scripted walk through the whole product against a
// running server, printing each step. Codes come from debug_code, so the
// server must run with BIKE_SMS_SENDER=echo (or pass --code).
import { parseArgs } from 'node:util';
import { randomInt, randomUUID } from 'node:crypto';
import { BikeClient } from '../client/client.js';
import { clientOptions, connectFlags } from './connect.js';

export async function demoCommand(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      ...connectFlags,
      phone: { type: 'string' },
      code: { type: 'string' },
      lat: { type: 'string', default: '31.2304' },
      lng: { type: 'string', default: '121.4737' },
      'ride-seconds': { type: 'string', default: '1' },
    },
  });
  const lat = Number(v.lat);
  const lng = Number(v.lng);
  const phone = v.phone ?? `+1555${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
  const client = await BikeClient.connect(clientOptions(v));
  const step = (n: number, what: string, answer: unknown) => console.log(`${n}. ${what}: ${JSON.stringify(answer)}`);
  try {
    step(1, 'ping', await client.ping(42));
    const sent = await client.requestCode(phone);
    step(2, `request a code for ${phone}`, sent);
    const code = v.code ?? sent.debugCode;
    if (!code) {
      console.error('the server does not echo codes (BIKE_SMS_SENDER=log): read the code from its log and pass --code');
      return 1;
    }
    const login = await client.login(phone, code);
    step(3, 'log in', { userId: login.userId, newUser: login.newUser, balanceCents: login.balanceCents, token: '<kept by the client>' });
    step(4, 'recharge 500 cents', await client.recharge(500, randomUUID()));
    step(5, 'balance', { balanceCents: await client.balance() });
    const nearby = await client.nearbyBikes({ lat, lng, radiusM: 5000, limit: 5 });
    step(6, `bikes near ${lat},${lng}`, nearby.bikes);
    const bike = nearby.bikes[0];
    if (!bike) {
      console.error('no available bike within 5 km: seed some with `bikeshare bikes seed --count 50 --lat ... --lng ... --radius-m 1000`');
      return 1;
    }
    const ride = await client.unlock(bike.bikeId);
    step(7, `scan bike ${bike.bikeId}`, ride);
    await new Promise((r) => setTimeout(r, Number(v['ride-seconds']) * 1000));
    step(8, 'end the ride and pay', await client.endRide(ride.rideId, bike.lat + 0.001, bike.lng + 0.001));
    step(9, 'account records', (await client.accountRecords('', 10)).records);
    step(10, 'past rides', (await client.rides('', 10)).rides);
    await client.logout();
    step(11, 'log out', 'ok');
    console.log('demo finished');
    return 0;
  } finally {
    client.close();
  }
}
