/** Milliseconds since the epoch. Injected so decision logic is testable without waiting. */
export type Clock = () => number;

export const systemClock: Clock = Date.now;
