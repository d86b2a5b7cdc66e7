// FindNearbyBikes, and putting bikes on the map.
import type { Clock } from '../clock.js';
import type { Db } from '../stores/mysql.js';
import { availableInBox, insertBike } from '../dao/bikes.js';
import type { NearbyBike } from '../protocol/messages.js';
import { boundingBox, haversineM, randomPointWithin } from './geo.js';

export class BikeService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Available bikes whose exact distance is within radiusM, ordered by the
   * distance_m the client sees (rounded metres), ties by bike id; at most `limit`.
   */
  async nearby(lat: number, lng: number, radiusM: number, limit: number): Promise<NearbyBike[]> {
    const candidates = await availableInBox(this.db, boundingBox(lat, lng, radiusM));
    const found: NearbyBike[] = [];
    for (const b of candidates) {
      const d = haversineM(lat, lng, b.lat, b.lng);
      if (d <= radiusM) found.push({ bikeId: b.id, lat: b.lat, lng: b.lng, distanceM: Math.round(d) });
    }
    found.sort((a, b) => a.distanceM - b.distanceM || a.bikeId - b.bikeId);
    return found.slice(0, limit);
  }

  /** Adds `count` available bikes spread uniformly in the circle; returns their ids. */
  async seed(count: number, lat: number, lng: number, radiusM: number): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = randomPointWithin(lat, lng, radiusM);
      ids.push(await insertBike(this.db, p.lat, p.lng, this.clock.now()));
    }
    return ids;
  }
}
