// `bikeshare bikes seed|set-status`: operator actions on the fleet.
import { parseArgs } from 'node:util';
import type { Config } from '../config/config.js';
import { systemClock } from '../clock.js';
import { BikeService } from '../services/bikes.js';
import { setBikeStatus } from '../dao/bikes.js';
import { withDb } from './db.js';

function num(value: string | undefined, name: string, check: (n: number) => boolean): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || !check(n)) throw new Error(`--${name}: missing or out of range (${value})`);
  return n;
}

export async function bikesCommand(args: string[], config: Config): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { count: { type: 'string' }, lat: { type: 'string' }, lng: { type: 'string' }, 'radius-m': { type: 'string' }, id: { type: 'string' }, status: { type: 'string' } },
  });
  if (sub === 'seed') {
    const count = num(values.count, 'count', (n) => Number.isInteger(n) && n >= 1 && n <= 1_000_000);
    const lat = num(values.lat, 'lat', (n) => n >= -90 && n <= 90);
    const lng = num(values.lng, 'lng', (n) => n >= -180 && n <= 180);
    const radius = num(values['radius-m'], 'radius-m', (n) => n >= 0 && n <= 100_000);
    const added = await withDb(config, (db) => new BikeService(db, systemClock).seed(count, lat, lng, radius));
    console.log(`added ${added.length} bikes (ids ${added[0]}..${added[added.length - 1]})`);
    return 0;
  }
  if (sub === 'set-status') {
    const id = num(values.id, 'id', (n) => Number.isInteger(n) && n > 0);
    const status = values.status;
    if (status !== 'available' && status !== 'out_of_service') throw new Error('--status: available or out_of_service');
    // A bike in use is never changed here: its ride ends first.
    const ok = await withDb(config, (db) => setBikeStatus(db, id, status, Date.now()));
    console.log(ok ? `bike ${id} is now ${status}` : `bike ${id}: not found or in use`);
    return ok ? 0 : 1;
  }
  console.error('usage: bikeshare bikes seed --count N --lat LAT --lng LNG --radius-m R | bikes set-status --id ID --status available|out_of_service');
  return 2;
}
