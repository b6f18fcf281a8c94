// The WAF inspects the requests one event-loop turn read together, back to
// back, at the end of that turn (setImmediate: once the turn's I/O callbacks
// are done), not each in the middle of the reads.
//
// Why: on a busy gateway one turn reads many sockets, and between two
// requests' inspections ran the socket reads, the HTTP parser and the router
// of the next one. The WAF's working set (the rule set, its compiled
// patterns, the engine's code) went cold in between, and CRS's small rules
// then cost two to three times what they cost in a loop that does nothing
// else (BENCHMARKS.md, "The WAF at the end of the turn"). Run back to back,
// only the first inspection of a turn starts cold. On a quiet gateway a turn
// reads one request, and the wait is the rest of that turn: the same turn,
// nothing else runs first.

type Job = () => void;

let queue: Job[] | undefined;

function drain(): void {
  const jobs = queue!;
  queue = undefined;
  // Jobs queued while draining (none are: inspection is synchronous up to its
  // first await) would start the next batch.
  for (let i = 0; i < jobs.length; i++) jobs[i]!();
}

/**
 * Runs `work` at the end of the current event-loop turn, after the work queued
 * before it in the same turn; the promise settles with what `work` returns or
 * throws.
 */
export function atTurnEnd<T>(work: () => T | Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (queue === undefined) {
      queue = [];
      setImmediate(drain);
    }
    queue.push(() => {
      try {
        resolve(work());
      } catch (e) {
        reject(e);
      }
    });
  });
}
