// Time comes from here, so TTL and fare logic can be driven by tests.
export interface Clock {
  /** milliseconds since the epoch */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
