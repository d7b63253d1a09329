import { describe, expect, it } from "vitest";
import {
  normalizeTaskPayload,
  TaskEventParseError,
} from "../../src/services/ittybit/task-event.ts";

// Payloads as the reference documents them: the 2025-08-20 task object (§4.1), the runs-era task
// with outputs[] (§4.2), the event envelope (§5.2) and the 2025-08-20 webhook example (§5.1).

const transcriptFile = {
  id: "file_9aB3cD4eF5gH",
  object: "intelligence",
  kind: "speech",
  type: "application/json",
  media_id: "med_1aB2cD3eF4gH",
  url: "https://you.ittybit.net/transcript.json",
  filesize: 2048,
  status: "ready",
  created: "2025-09-01T10:00:00.000Z",
  updated: "2025-09-01T10:05:00.000Z",
};

const e2Task = {
  id: "task_4kT9pQ2rS7uV",
  object: "task",
  kind: "speech",
  input: { id: "file_0aB1cD2eF3gH", object: "source", kind: "video" },
  options: { ref: "transcript", language: "en" },
  output: null,
  status: "pending",
  progress: 0,
  error: null,
  created_by: "key_5zY4xW3vU2tS",
  created: "2025-09-01T10:00:00.000Z",
  updated: "2025-09-01T10:00:00.000Z",
};

describe("normalizeTaskPayload: 2025-08-20 task object", () => {
  it("reads a pending task", () => {
    expect(normalizeTaskPayload(e2Task)).toEqual({
      taskId: "task_4kT9pQ2rS7uV",
      status: "PENDING",
      progress: 0,
      output: null,
      error: null,
      deliveryId: null,
      rawStatus: "pending",
    });
  });

  it("reads progress while processing", () => {
    const event = normalizeTaskPayload({ ...e2Task, status: "processing", progress: 42 });
    expect(event).toMatchObject({ status: "PROCESSING", progress: 42, rawStatus: "processing" });
  });

  it("reads the output file of a completed task", () => {
    const event = normalizeTaskPayload({
      ...e2Task,
      status: "completed",
      progress: 100,
      output: transcriptFile,
    });
    expect(event).toMatchObject({
      status: "COMPLETED",
      progress: 100,
      output: {
        fileId: "file_9aB3cD4eF5gH",
        url: "https://you.ittybit.net/transcript.json",
        kind: "speech",
        type: "application/json",
      },
    });
  });

  it("takes an output URL that is not http(s) as no URL", () => {
    for (const url of [
      "javascript:alert(document.cookie)",
      "file:///etc/passwd",
      "/relative",
      "data:,x",
    ]) {
      const event = normalizeTaskPayload({
        ...e2Task,
        status: "completed",
        output: { ...transcriptFile, url },
      });
      expect(event.output).toMatchObject({ fileId: "file_9aB3cD4eF5gH", url: null });
    }
  });

  it("reads the error of a failed task", () => {
    const event = normalizeTaskPayload({ ...e2Task, status: "failed", error: "Unsupported codec" });
    expect(event).toMatchObject({ status: "FAILED", error: "Unsupported codec", output: null });
  });

  it.each([
    ["pending", "PENDING"],
    ["waiting", "PENDING"],
    ["processing", "PROCESSING"],
    ["ready", "COMPLETED"],
    ["completed", "COMPLETED"],
    ["failed", "FAILED"],
    ["error", "FAILED"],
    ["cancelled", "FAILED"],
    ["COMPLETED", "COMPLETED"],
  ])("maps status %s to %s", (rawStatus, status) => {
    expect(normalizeTaskPayload({ ...e2Task, status: rawStatus })).toMatchObject({
      status,
      rawStatus,
    });
  });

  it.each(["thinking_hard", "constructor"])(
    "treats the undocumented status %s as PENDING and keeps the word",
    (rawStatus) => {
      const event = normalizeTaskPayload({ ...e2Task, status: rawStatus });
      expect(event).toMatchObject({ status: "PENDING", rawStatus });
    },
  );

  it("keeps progress within 0–100 and tolerates its absence", () => {
    expect(normalizeTaskPayload({ ...e2Task, progress: 140 }).progress).toBe(100);
    expect(normalizeTaskPayload({ ...e2Task, progress: -3 }).progress).toBe(0);
    const { progress: _, ...withoutProgress } = e2Task;
    expect(normalizeTaskPayload(withoutProgress).progress).toBeNull();
  });

  it("takes the delivery id it is given", () => {
    expect(normalizeTaskPayload(e2Task, "msg_abc").deliveryId).toBe("msg_abc");
  });
});

describe("normalizeTaskPayload: webhook example with results (2025-08-20 docs)", () => {
  it("reads the output URL from results", () => {
    const event = normalizeTaskPayload({
      id: "task_4kT9pQ2rS7uV",
      object: "task",
      kind: "audio",
      status: "completed",
      results: { url: "https://you.ittybit.net/episode.mp3", format: "mp3" },
      project_id: "prj_1",
      created: "2025-09-01T10:00:00.000Z",
      completed: "2025-09-01T10:01:00.000Z",
    });
    expect(event).toMatchObject({
      status: "COMPLETED",
      output: { fileId: null, url: "https://you.ittybit.net/episode.mp3", kind: null, type: null },
    });
  });

  it("has no output when results carry no URL", () => {
    const event = normalizeTaskPayload({
      id: "task_4kT9pQ2rS7uV",
      kind: "nsfw",
      status: "completed",
      results: { is_nsfw: false, confidence: 0.98 },
    });
    expect(event.output).toBeNull();
  });
});

const e3Task = {
  id: "task_8hJ2kL4mN6pQ8rS1",
  object: "task",
  kind: "chapters",
  status: "succeeded",
  inputs: [{ url: "https://store.ittybit.net/episode.mp4" }],
  outputs: [{ kind: "track", type: "text/vtt", url: "https://store.ittybit.net/chapters.vtt" }],
  created_at: 1_735_689_825,
  updated_at: 1_735_689_886,
};

describe("normalizeTaskPayload: runs-era task", () => {
  it("reads succeeded and the first of outputs[]", () => {
    expect(normalizeTaskPayload(e3Task)).toEqual({
      taskId: "task_8hJ2kL4mN6pQ8rS1",
      status: "COMPLETED",
      progress: null,
      output: {
        fileId: null,
        url: "https://store.ittybit.net/chapters.vtt",
        kind: "track",
        type: "text/vtt",
      },
      error: null,
      deliveryId: null,
      rawStatus: "succeeded",
    });
  });

  it.each([
    ["validating", "PENDING"],
    ["queued", "PENDING"],
    ["finishing", "PROCESSING"],
  ])("maps status %s to %s", (rawStatus, status) => {
    expect(normalizeTaskPayload({ ...e3Task, status: rawStatus }).status).toBe(status);
  });

  it("reads an error given as {kind, message}", () => {
    const event = normalizeTaskPayload({
      ...e3Task,
      status: "failed",
      outputs: [],
      error: { kind: "format_unsupported", message: "Input format is not supported" },
    });
    expect(event).toMatchObject({
      status: "FAILED",
      error: "Input format is not supported",
      output: null,
    });
  });
});

describe("normalizeTaskPayload: event envelope", () => {
  const envelope = {
    id: "evt_abcdefgh12345678",
    object: "event",
    kind: "task.succeeded",
    data: e3Task,
    created_at: 1_735_689_886,
  };

  it("reads the task inside and takes the event id as delivery id", () => {
    expect(normalizeTaskPayload(envelope)).toMatchObject({
      taskId: "task_8hJ2kL4mN6pQ8rS1",
      status: "COMPLETED",
      deliveryId: "evt_abcdefgh12345678",
    });
  });

  it("prefers the delivery id from the webhook headers", () => {
    expect(normalizeTaskPayload(envelope, "msg_header").deliveryId).toBe("msg_header");
  });

  it("falls back on the topic when the task summary has no status", () => {
    const { status: _, ...summary } = e3Task;
    expect(normalizeTaskPayload({ ...envelope, kind: "task.failed", data: summary })).toMatchObject(
      {
        status: "FAILED",
        rawStatus: "task.failed",
      },
    );
  });

  it("trusts the task's own status over the topic", () => {
    const event = normalizeTaskPayload({
      ...envelope,
      kind: "task.updated",
      data: { ...e3Task, status: "processing", progress: 30 },
    });
    expect(event).toMatchObject({ status: "PROCESSING", progress: 30 });
  });

  it("refuses events about runs", () => {
    expect(() =>
      normalizeTaskPayload({ ...envelope, kind: "run.succeeded", data: { id: "run_1" } }),
    ).toThrow(TaskEventParseError);
  });
});

describe("normalizeTaskPayload: not a task", () => {
  it.each([
    ["nothing", undefined],
    ["a string", "task_4kT9pQ2rS7uV"],
    ["an empty object", {}],
    ["a numeric id", { id: 7, status: "completed" }],
    ["a media item", { id: "med_1aB2cD3eF4gH", object: "media", status: "ready" }],
    ["a task without status", { id: "task_4kT9pQ2rS7uV", object: "task" }],
    ["an envelope without a task", { id: "evt_1", object: "event", kind: "task.updated" }],
  ])("refuses %s", (_, payload) => {
    expect(() => normalizeTaskPayload(payload)).toThrow(TaskEventParseError);
  });
});
