// The Durable Object has one alarm. Each module says when it next needs to
// wake; the arbiter sets the alarm to the earliest, and when it fires gives
// every module its turn, in the order they were registered.

export interface WakeSource {
  /** The earliest time this module needs the alarm, or null. A time in the past means "now". */
  nextWakeAt(now: number): number | null;
  wake(now: number): void | Promise<void>;
}

export class AlarmArbiter {
  /** The alarm time last set by this instance, so an unchanged one is not written again. */
  private alarmAt: number | undefined;

  constructor(
    private readonly setAlarm: (at: number) => void,
    private readonly sources: readonly WakeSource[],
    private readonly clock: () => number = Date.now,
  ) {}

  schedule(now = this.clock()): void {
    const candidates = this.sources.map((source) => source.nextWakeAt(now)).filter((at): at is number => at !== null && at > 0);
    if (!candidates.length) return;
    const at = Math.max(now, Math.min(...candidates));
    if (at === this.alarmAt) return; // most messages change nothing here; skip the storage write
    this.alarmAt = at;
    this.setAlarm(at);
  }

  async fire(now = this.clock()): Promise<void> {
    this.alarmAt = undefined;
    for (const source of this.sources) await source.wake(now);
    this.schedule();
  }
}
