import type { Job } from "pg-boss";
import type { z } from "zod";

/**
 * A pg-boss work handler from what one job does with its parsed payload. Every job of the batch
 * pg-boss hands over is handled (Podflow's workers take one at a time, and an empty batch is
 * nothing to do). A payload that does not match the queue's schema throws, so the job fails and
 * is retried, then dead-lettered, rather than reaching a service with bad data.
 */
export function jobHandler<Payload extends z.ZodType, J extends Job<unknown> = Job<unknown>>(
  payload: Payload,
  handle: (data: z.infer<Payload>, job: J) => Promise<unknown>,
): (jobs: J[]) => Promise<void> {
  return async (jobs) => {
    for (const job of jobs) await handle(payload.parse(job.data), job);
  };
}
