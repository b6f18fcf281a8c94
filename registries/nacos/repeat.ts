// A task run again `ms` after each run settles (never two at once), until the
// watcher stops: the Nacos watchers' service-list refresh and polling.

/** A repeating task; stop() clears the pending run. */
export class Repeat {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly ms: number,
    private readonly task: () => Promise<void>,
  ) {}

  /** Schedules the next run (the first one `ms` from now). */
  start(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.task().finally(() => this.start()), this.ms);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
