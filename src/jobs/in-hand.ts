/**
 * The jobs a worker process holds: what a stop hands back at once, and which jobs were resumed
 * after their last run was lost (a crash: missed heartbeat or expiry; or a stop). See
 * docs/architecture.md, "Jobs and crash recovery".
 */
import type { JobWithMetadata, PgBoss } from "pg-boss";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.ts";

/** The failure pg-boss's supervisor stores for a job whose worker died (or hung): see plans.js. */
const MISSED_HEARTBEAT = /heartbeat|timed out|expired/i;
/** pg-boss's own message when a stop outlasts its grace, and Podflow's hand-back below. */
const STOPPED = /shut down while active|handed back/i;
const HANDED_BACK = "handed back: the Podflow running it was stopped";

type Work = (jobs: JobWithMetadata<unknown>[]) => Promise<void>;

export interface JobsInHand {
  /**
   * The handler pg-boss runs for `queue` (registered with `includeMetadata: true`): notes a job
   * resumed after a crash (a log line and `podflow_jobs_resumed_total`), and keeps track of the
   * jobs in hand. `handBackOnStop` is for jobs that wait on something outside (ffmpeg, Ittybit),
   * which a stop's grace should not wait for: their handlers stop on `job.signal`.
   */
  track(queue: string, work: Work, options?: { handBackOnStop?: boolean }): Work;
  /**
   * The start of a stop: fetches nothing more, and aborts the signal of every `handBackOnStop`
   * job in hand; once its handler has stopped and cleaned up, the job is handed back — failed
   * with a reason, due again now (any living worker picks it up), without using one of its
   * retries. Resolves when they all are, or after `graceMs` for a handler that ignores its
   * signal (pg-boss's stop then fails what is left). Other jobs keep running for the stop's grace.
   */
  handBack(graceMs: number): Promise<void>;
}

export function trackJobsInHand(deps: {
  boss: PgBoss;
  logger: Logger;
  metrics: Pick<Metrics, "jobsResumed" | "jobsHandedBack"> & Partial<Pick<Metrics, "jobDuration">>;
}): JobsInHand {
  const { boss, logger, metrics } = deps;
  const queues = new Set<string>();
  const inHand = new Map<
    string,
    {
      queue: string;
      job: JobWithMetadata<unknown>;
      stop: AbortController;
      handBack: boolean;
      settled: Promise<void>;
    }
  >();
  let stopping = false;

  function noteResumed(queue: string, job: JobWithMetadata<unknown>) {
    if (!job.retryCount) return;
    const previousFailure = failureMessage(job.output);
    if (!previousFailure) return;
    const data = job.data as { episodeId?: unknown; taskId?: unknown } | null;
    const fields = {
      queue,
      jobId: job.id,
      retryCount: job.retryCount,
      previousFailure,
      episodeId: data?.episodeId,
      taskId: data?.taskId,
    };
    if (MISSED_HEARTBEAT.test(previousFailure)) {
      metrics.jobsResumed.inc({ queue, after: "missed_heartbeat" });
      logger.warn(fields, "job resumed after a missed heartbeat");
    } else if (STOPPED.test(previousFailure)) {
      metrics.jobsResumed.inc({ queue, after: "stop" });
      logger.info(fields, "job resumed after its Podflow stopped");
    }
  }

  async function handBackJob(queue: string, job: JobWithMetadata<unknown>) {
    // Fenced to this attempt: a job pg-boss already failed (or another worker holds) is left alone.
    const failed = await boss.fail(
      queue,
      { id: job.id, retryCount: job.retryCount },
      { message: HANDED_BACK },
    );
    // pg-boss answers `{ affected }` at run time; its types declare an empty response.
    if (!(failed as { affected?: number }).affected) return;
    // Due now rather than after the retry delay, and a stop is not the job's fault: it keeps the
    // retries it had. A job stopped in its last attempt has none: it went to its dead letter
    // queue, as after a crash (pg-boss cannot raise the limit of a job still active).
    await boss
      .update(queue, undefined, {
        id: job.id,
        startAfter: new Date(),
        retryLimit: job.retryLimit + 1,
      })
      .catch((error: unknown) =>
        logger.warn({ err: error, queue, jobId: job.id }, "could not make a handed-back job due"),
      );
    metrics.jobsHandedBack.inc({ queue });
    const data = job.data as { episodeId?: unknown; taskId?: unknown } | null;
    logger.info(
      { queue, jobId: job.id, episodeId: data?.episodeId, taskId: data?.taskId },
      "job handed back: Podflow is stopping",
    );
  }

  return {
    track(queue, work, options = {}) {
      queues.add(queue);
      const handBack = options.handBackOnStop ?? false;
      return async (jobs) => {
        for (const job of jobs) {
          if (stopping && handBack) {
            await handBackJob(queue, job);
            continue;
          }
          noteResumed(queue, job);
          const stop = new AbortController();
          job.signal = job.signal ? AbortSignal.any([job.signal, stop.signal]) : stop.signal;
          const entry = { queue, job, stop, handBack, settled: Promise.resolve() };
          inHand.set(job.id, entry);
          const started = performance.now();
          const timed = (outcome: "completed" | "failed" | "stopped") =>
            metrics.jobDuration?.observe({ queue, outcome }, (performance.now() - started) / 1_000);
          const done = (async () => {
            try {
              await work([job]);
              timed("completed");
            } catch (error) {
              timed(stop.signal.aborted ? "stopped" : "failed");
              // Stopped by handBack(): the handler has cleaned up (its scratch files are gone), so
              // only now is the job given back, and no other worker can start it beside this one.
              if (!stop.signal.aborted) throw error;
              await handBackJob(queue, job).catch((failure: unknown) => {
                // pg-boss fails the job instead, with its retry delay.
                logger.error({ err: failure, queue, jobId: job.id }, "could not hand a job back");
                throw error;
              });
            } finally {
              inHand.delete(job.id);
            }
          })();
          entry.settled = done.then(
            () => undefined,
            () => undefined,
          );
          await done;
        }
      };
    },

    async handBack(graceMs) {
      stopping = true;
      // No new fetches; pg-boss's stop still waits for the handlers under way.
      await Promise.all([...queues].map((queue) => boss.offWork(queue, { wait: false })));
      const stopped = [...inHand.values()].filter((entry) => entry.handBack);
      for (const { stop } of stopped) stop.abort(new Error(HANDED_BACK));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(stopped.map((entry) => entry.settled)),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/** The message of a job's stored failure output: `{message}`, `{value}` or `{value: {message}}`. */
export function failureMessage(output: unknown): string | null {
  if (!output || typeof output !== "object") return null;
  const { message, value } = output as { message?: unknown; value?: unknown };
  if (typeof message === "string") return message;
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    const inner = (value as { message?: unknown }).message;
    if (typeof inner === "string") return inner;
  }
  return null;
}
