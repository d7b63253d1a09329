/**
 * One subscriber's stream of updates: what the feed pushes, the GraphQL server pulls. Updates are
 * keyed (an episode id, a task id): when a subscriber falls behind, a newer update of a key
 * replaces the one still waiting and moves to the end of the queue, so a slow client gets the
 * latest state of each thing in commit order rather than an unbounded backlog.
 */
export class FeedSubscription<T> implements AsyncIterableIterator<T> {
  readonly #queue = new Map<string, T>();
  #waiting: ((result: IteratorResult<T>) => void) | null = null;
  #ended = false;
  readonly #onEnd: () => void;

  constructor(onEnd: () => void) {
    this.#onEnd = onEnd;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Hands `value` to the subscriber, replacing an undelivered update of the same key. */
  push(key: string, value: T): void {
    if (this.#ended) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value, done: false });
      return;
    }
    this.#queue.delete(key);
    this.#queue.set(key, value);
  }

  /** Ends the stream: undelivered updates are dropped, the subscriber sees it complete. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#queue.clear();
    this.#onEnd();
    const resolve = this.#waiting;
    this.#waiting = null;
    resolve?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    const first = this.#queue.entries().next();
    if (!first.done) {
      const [key, value] = first.value;
      this.#queue.delete(key);
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  /** The subscriber left (unsubscribed, disconnected). */
  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
