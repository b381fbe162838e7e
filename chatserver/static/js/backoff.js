// Reconnect delays: exponential backoff with full jitter, so that a whole room of browsers
// dropped by one backend does not come back in lockstep.

export const RECONNECT_BASE_MS = 500;
export const RECONNECT_CAP_MS = 15_000;

/** Delay before reconnect attempt number `attempt` (0 for the first retry), in milliseconds. */
export function fullJitterDelay(
  attempt,
  { baseMs = RECONNECT_BASE_MS, capMs = RECONNECT_CAP_MS, random = Math.random } = {},
) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
