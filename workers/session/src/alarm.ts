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
  /** A schedule is owed at the end of the current turn. */
  private owed = false;
  /** While the alarm's turn runs, requests wait for the schedule that ends it. */
  private firing = false;

  constructor(
    private readonly setAlarm: (at: number) => void,
    private readonly sources: readonly WakeSource[],
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Asks for the alarm to be worked out once the current turn's synchronous
   * work is done. One command appends several audit events and moves the
   * queue; asking every module for its next wake-up after each of those
   * changes was a large share of the session's time per command.
   */
  requestSchedule(): void {
    if (this.owed) return;
    this.owed = true;
    if (this.firing) return;
    queueMicrotask(() => {
      if (!this.owed) return; // a schedule() since the request already covered it
      try {
        this.schedule();
      } catch (error) {
        console.error("the session's alarm could not be scheduled", error);
      }
    });
  }

  schedule(now = this.clock()): void {
    this.owed = false;
    const candidates = this.sources.map((source) => source.nextWakeAt(now)).filter((at): at is number => at !== null && at > 0);
    if (!candidates.length) return;
    const at = Math.max(now, Math.min(...candidates));
    if (at === this.alarmAt) return; // most messages change nothing here; skip the storage write
    this.alarmAt = at;
    this.setAlarm(at);
  }

  async fire(now = this.clock()): Promise<void> {
    this.alarmAt = undefined;
    this.firing = true;
    try {
      for (const source of this.sources) await source.wake(now);
    } finally {
      this.firing = false;
      this.owed = false; // covered by the schedule below, or by the platform's retry of a failed alarm
    }
    this.schedule();
  }
}
