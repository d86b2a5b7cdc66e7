// Distances on a sphere (docs/protocol.md: haversine, R = 6371008.8 m) and the
// bounding box that lets the index find candidates before the exact filter.
import type { Box } from '../dao/bikes.js';

export const EARTH_RADIUS_M = 6371008.8;
const RAD = Math.PI / 180;

export function haversineM(lat1: number, lng1: number, lat2: number, lng2: number): number {
  const dLat = (lat2 - lat1) * RAD;
  const dLng = (lng2 - lng1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLng / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** A box that contains every point within `radiusM` of the centre (a little larger, never smaller). */
export function boundingBox(lat: number, lng: number, radiusM: number): Box {
  const dLat = (radiusM / EARTH_RADIUS_M) / RAD * 1.0001;
  const minLat = Math.max(-90, lat - dLat);
  const maxLat = Math.min(90, lat + dLat);
  const cos = Math.cos(Math.max(Math.abs(minLat), Math.abs(maxLat)) * RAD);
  // Near a pole every longitude may be in reach.
  if (maxLat >= 90 || minLat <= -90 || cos < 1e-6) return { minLat, maxLat, lngRanges: [[-180, 180]] };
  const dLng = Math.min(180, dLat / cos);
  const lo = lng - dLng;
  const hi = lng + dLng;
  if (dLng >= 180) return { minLat, maxLat, lngRanges: [[-180, 180]] };
  if (lo < -180) return { minLat, maxLat, lngRanges: [[-180, hi], [lo + 360, 180]] };
  if (hi > 180) return { minLat, maxLat, lngRanges: [[lo, 180], [-180, hi - 360]] };
  return { minLat, maxLat, lngRanges: [[lo, hi]] };
}

/** A uniformly spread random point within `radiusM` of the centre (for seeding). */
export function randomPointWithin(lat: number, lng: number, radiusM: number, random: () => number = Math.random): { lat: number; lng: number } {
  const distance = radiusM * Math.sqrt(random());
  const bearing = 2 * Math.PI * random();
  const d = distance / EARTH_RADIUS_M;
  const lat1 = lat * RAD;
  const lng1 = lng * RAD;
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(bearing));
  const lng2 = lng1 + Math.atan2(Math.sin(bearing) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
  let outLng = lng2 / RAD;
  if (outLng > 180) outLng -= 360;
  if (outLng < -180) outLng += 360;
  return { lat: lat2 / RAD, lng: outLng };
}
