/**
 * A token bucket kept in memory: small enough to write here rather than pull
 * in a library, and in-memory on purpose (a limiter that starts full after a
 * hibernation wake is still a limiter; it never costs a storage write).
 */
export class TokenBucket {
  private tokens: number;
  private at = 0;

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
  ) {
    this.tokens = capacity;
  }

  /** Takes `cost` tokens if there are that many; false (and nothing taken) otherwise. */
  take(now: number, cost = 1): boolean {
    if (this.at) this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) / 1000) * this.refillPerSecond);
    this.at = now;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}
