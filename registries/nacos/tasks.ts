// What both Nacos watchers (v1 HTTP and gRPC) run their work with: a task
// repeated after each run settles, bounded concurrency over a list, the
// text of an error for logs and registry status, and one page of a service
// listing taken in.

/** An error's message (or the thrown value as text). */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  });
  await Promise.all(workers);
}

// A task run again `ms` after each run settles (never two at once), until the
// watcher stops: the service-list refresh and polling.

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

/**
 * One page of a service listing, taken in as it arrives: the services
 * already tracked (by `group@@service`) are marked with the listing's
 * number, the others noted in `added`. The watcher removes the unmarked and
 * adds the noted only once every page of the listing came.
 */
export function takeListedPage(
  tracked: ReadonlyMap<string, { listed: number }>,
  listing: number,
  group: string,
  names: readonly string[],
  added: Map<string, { group: string; service: string }>,
): void {
  for (const service of names) {
    const key = `${group}@@${service}`;
    const t = tracked.get(key);
    if (t !== undefined) t.listed = listing;
    else added.set(key, { group, service });
  }
}
