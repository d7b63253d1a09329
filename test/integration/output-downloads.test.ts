import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { report, uploadEpisode, waitForStatus, waitForTasks } from "../support/pipeline.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";

// A forged "completed" delivery names an output URL on this machine (where a metadata service, the
// database or an admin port would be). Podflow must not fetch it, must tell the producer only
// that the output could not be downloaded, and must keep the URL's signature out of its log.

let scenario: Scenario;
let producer: TestProducer;
let trap: Server;
let trapUrl: string;
const trapped: string[] = [];
const logLines: string[] = [];

beforeAll(async () => {
  trap = createServer((req, res) => {
    trapped.push(`${req.method} ${req.url}`);
    res.writeHead(200, { "content-type": "application/json" }).end('{"text":["secret"]}');
  });
  await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
  trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
  scenario = await startScenario({
    overrides: { reconcileCron: "0 0 1 1 *" },
    start: {
      outputs: { retryLimit: 0 },
      logger: pino(
        { level: "info" },
        new Writable({
          write(chunk, _encoding, done) {
            logLines.push(String(chunk));
            done();
          },
        }),
      ),
    },
  });
  producer = await scenario.producer();
});
afterAll(async () => {
  await scenario?.stop();
  await new Promise<void>((resolve) => trap?.close(() => resolve()));
});

describe("output downloads from a running Podflow", () => {
  it("refuses an output URL outside PODFLOW_OUTPUT_HOSTS: no request, a generic reason, no signature logged", async () => {
    const episode = await uploadEpisode(scenario, producer, "Forged output");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    for (const task of tasks) {
      const output =
        task.type === "TRANSCRIPT_GENERATION"
          ? { url: `${trapUrl}/latest/meta-data/iam?X-Amz-Signature=s3cr3t` }
          : undefined;
      await report(scenario, task.engine_task_id, "completed", output ? { output } : {});
    }
    const failed = await waitForStatus(scenario, episode.uuid, "FAILED");
    expect(failed.failure_reason).toBe(
      "Processing finished, but the transcript could not be downloaded",
    );
    expect(failed.transcript).toBeNull();
    expect(trapped).toEqual([]);
    const log = logLines.join("");
    expect(log).toMatch(/refused to download an output/);
    expect(log).toMatch(/is not in PODFLOW_OUTPUT_HOSTS/);
    expect(log).not.toContain("s3cr3t");
  });

  it("downloads from the listed stand-in as before", async () => {
    const episode = await uploadEpisode(scenario, producer, "Listed output");
    const tasks = await waitForTasks(scenario, episode.uuid);
    await waitForStatus(scenario, episode.uuid, "PROCESSING");
    for (const task of tasks) await report(scenario, task.engine_task_id, "completed");
    const done = await waitForStatus(scenario, episode.uuid, "PROCESSED");
    expect(done.transcript).toBeTruthy();
    expect(trapped).toEqual([]);
  });
});
