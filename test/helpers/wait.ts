// Poll a condition until it holds; fail naming what was awaited.
import assert from 'node:assert/strict';

export async function waitUntil(what: string, cond: () => boolean, timeoutMs = 20_000, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  if (!cond()) assert.fail(`timed out waiting for: ${what}`);
}
