import { describe, expect, it } from "vitest";
import { TASK_TYPES } from "../../src/domain/tasks.ts";
import { buildTaskRequest, webhookUrlFor } from "../../src/services/ittybit/task-options.ts";

const webhookUrl = "https://podflow.example/webhooks/ittybit";
const fileId = "file_0aB1cD2eF3gH";
const request = (type: (typeof TASK_TYPES)[number]) =>
  buildTaskRequest(type, { fileId, webhookUrl });

describe("buildTaskRequest", () => {
  it("builds the audio task: a 192 kbit/s stereo MP3", () => {
    expect(request("AUDIO_EXTRACTION")).toEqual({
      kind: "audio",
      format: "mp3",
      bitrate: 192_000,
      channels: 2,
      ref: "podcast_audio",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("builds the video task: 1080p30 H.264 MP4", () => {
    expect(request("VIDEO_TRANSCODE")).toEqual({
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

  it("builds the transcript task: English speech", () => {
    expect(request("TRANSCRIPT_GENERATION")).toEqual({
      kind: "speech",
      language: "en",
      ref: "transcript",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("builds the chapters task", () => {
    expect(request("CHAPTER_DETECTION")).toEqual({
      kind: "chapters",
      ref: "chapters",
      file_id: fileId,
      webhook_url: webhookUrl,
    });
  });

  it("asks for a different kind of output for each task type", () => {
    expect(new Set(TASK_TYPES.map((type) => request(type).kind))).toEqual(
      new Set(["audio", "video", "speech", "chapters"]),
    );
  });
});

describe("webhookUrlFor", () => {
  it.each([
    ["https://podflow.example", "https://podflow.example/webhooks/ittybit/tok"],
    ["https://podflow.example/", "https://podflow.example/webhooks/ittybit/tok"],
    ["https://example.com/podflow/", "https://example.com/podflow/webhooks/ittybit/tok"],
    ["http://127.0.0.1:4000", "http://127.0.0.1:4000/webhooks/ittybit/tok"],
  ])("appends /webhooks/ittybit/<token> to %s", (publicUrl, expected) => {
    expect(webhookUrlFor(publicUrl, "tok")).toBe(expected);
  });
});
