/**
 * One subscriber's stream of updates: what the feed pushes, the GraphQL server pulls. Updates are
 * keyed (an episode id, a task id): when a subscriber falls behind, a newer update of a key
 * replaces the one still waiting and moves to the end of the queue, so a slow client gets the
 * latest state of each thing in commit order rather than an unbounded backlog.
 */
export class FeedSubscription<T> implements AsyncIterableIterator<T> {
  readonly #queue = new Map<string, T>();
  #waiting: ((result: IteratorResult<T>) => void) | null = null;
  #take: ((value: T) => boolean) | null = null;
  #ended = false;
  readonly #onEnd: () => void;

  constructor(onEnd: () => void) {
    this.#onEnd = onEnd;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * A way for the consumer to take updates at once, in the same turn as the push, rather than
   * through a promise per update and whatever chain of iterators it reads through. Only while it
   * waits in next(): it asks for the next update once it has dealt with the one before (as
   * `for await` does), so an update taken at once never overtakes one handed over before it.
   * `take` returns false to have the update go through next() after all; one that throws is
   * taken to have delivered nothing (so it must not throw once it has). The GraphQL WebSocket
   * server writes shared results this way (src/schema/shared-executions.ts).
   */
  takeDirectly(take: (value: T) => boolean): void {
    this.#take = take;
  }

  /** Hands `value` to the subscriber, replacing an undelivered update of the same key. */
  push(key: string, value: T): void {
    if (this.#ended) return;
    if (this.#waiting) {
      if (this.#take && takenAtOnce(this.#take, value)) return;
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
    this.#take = null;
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

/** A `take` that throws has taken nothing: the update goes the usual way. */
function takenAtOnce<T>(take: (value: T) => boolean, value: T): boolean {
  try {
    return take(value);
  } catch {
    return false;
  }
}
