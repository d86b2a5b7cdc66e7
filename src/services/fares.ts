// fare = base + step * ceil(max(0, duration - baseSeconds) / stepSeconds), in
// integer cents; duration = floor(ms / 1000) as measured by the server.

export interface FareRule {
  fareBaseCents: number;
  fareBaseSeconds: number;
  fareStepCents: number;
  fareStepSeconds: number;
}

export function durationSeconds(startedAtMs: number, endedAtMs: number): number {
  return Math.max(0, Math.floor((endedAtMs - startedAtMs) / 1000));
}

export function fareCents(rule: FareRule, duration: number): number {
  const over = Math.max(0, duration - rule.fareBaseSeconds);
  // Integer ceil division: no floating point near money.
  const steps = over === 0 ? 0 : Math.floor((over + rule.fareStepSeconds - 1) / rule.fareStepSeconds);
  return rule.fareBaseCents + rule.fareStepCents * steps;
}
