// Messages between the primary and its workers (process.send / 'message').
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export type ToWorker = { bike: 'drain' } | { bike: 'metrics'; id: number };

export type ToPrimary =
  | { bike: 'listening'; port: number }
  | { bike: 'health'; mysql: boolean; redis: boolean }
  | { bike: 'metrics'; id: number; metrics: MetricsJson };

export function isToPrimary(msg: unknown): msg is ToPrimary {
  return typeof msg === 'object' && msg !== null && typeof (msg as { bike?: unknown }).bike === 'string';
}
export const isToWorker = isToPrimary as unknown as (msg: unknown) => msg is ToWorker;
