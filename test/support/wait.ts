// No vitest import here: benchmarks use it too (through test/support/crash.ts).

/**
 * Polls `read` until `done` holds for its value (usable in hooks too, unlike expect.poll), and
 * returns that value; fails with the last value after `timeoutMs`.
 */
export async function waitUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
