import { describe, expect, it } from "vitest";
import {
  buildTaskRequest,
  createTaskRequestBuilders,
  PODFLOW_TASK_TYPES,
  webhookUrlFor,
} from "../../src/services/ittybit/task-options.ts";

const webhookUrl = "https://podflow.example/webhooks/ittybit";
const builders = createTaskRequestBuilders(webhookUrl);
const fileId = "file_0aB1cD2eF3gH";

describe("task request builders", () => {
  it("builds the audio task with the seed's defaults", () => {
    expect(builders.audioTask(fileId)).toEqual({
      kind: "audio",
      format: "mp3",
      bitrate: 192_000,
      channels: 2,
      ref: "podcast_audio",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("builds the video task with the seed's defaults", () => {
    expect(builders.videoTask(fileId)).toEqual({
      kind: "video",
      format: "mp4",
      codec: "h264",
      width: 1920,
      height: 1080,
      fps: 30,
      bitrate: 5_000_000,
      ref: "youtube_video",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("builds the transcript task with the seed's defaults", () => {
    expect(builders.transcriptTask(fileId)).toEqual({
      kind: "speech",
      language: "en",
      ref: "transcript",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("builds the chapters task with the seed's defaults", () => {
    expect(builders.chaptersTask(fileId)).toEqual({
      kind: "chapters",
      ref: "chapters",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("lets any default be overridden and options be added", () => {
    const request = builders.audioTask(fileId, { bitrate: 128_000, ref: "ep_12_audio", start: 5 });
    expect(request).toMatchObject({
      kind: "audio",
      bitrate: 128_000,
      ref: "ep_12_audio",
      start: 5,
    });
    expect(request.format).toBe("mp3");
  });

  it("keeps a default when an override is undefined", () => {
    expect(builders.videoTask(fileId, { fps: undefined }).fps).toBe(30);
  });

  it("never lets overrides change the kind, the file or the webhook URL", () => {
    const sneaky = { kind: "image", file_id: "file_other", webhook_url: "https://evil.example" };
    // @ts-expect-error the type forbids these keys; the builder must hold even when it is bypassed
    const request = builders.chaptersTask(fileId, sneaky);
    expect(request).toMatchObject({ kind: "chapters", file_id: fileId, webhook_url: webhookUrl });
  });

  it("maps every Podflow task type to the same body as its named helper", () => {
    const named = {
      AUDIO_EXTRACTION: builders.audioTask,
      VIDEO_TRANSCODE: builders.videoTask,
      TRANSCRIPT_GENERATION: builders.transcriptTask,
      CHAPTER_DETECTION: builders.chaptersTask,
    };
    for (const type of PODFLOW_TASK_TYPES) {
      expect(builders.buildTaskRequest(type, fileId, { ref: type })).toEqual(
        named[type](fileId, { ref: type }),
      );
      expect(buildTaskRequest(type, { fileId, webhookUrl })).toEqual(named[type](fileId));
    }
    expect(
      new Set(PODFLOW_TASK_TYPES.map((type) => builders.buildTaskRequest(type, fileId).kind)),
    ).toEqual(new Set(["audio", "video", "speech", "chapters"]));
  });
});

describe("webhookUrlFor", () => {
  it.each([
    ["https://podflow.example", "https://podflow.example/webhooks/ittybit"],
    ["https://podflow.example/", "https://podflow.example/webhooks/ittybit"],
    ["https://example.com/podflow/", "https://example.com/podflow/webhooks/ittybit"],
    ["http://127.0.0.1:4000", "http://127.0.0.1:4000/webhooks/ittybit"],
  ])("appends /webhooks/ittybit to %s", (publicUrl, expected) => {
    expect(webhookUrlFor(publicUrl)).toBe(expected);
  });
});
