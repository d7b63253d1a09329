/**
 * One episode's card: title, status, its four tasks with live progress bars, the failure reason
 * with Retry, and for a processed episode its publishing panel (publishing.ts) and the player,
 * video, transcript, chapters and downloads.
 * Updates change the card in place, so a playing audio element keeps playing and focus stays.
 */
import type { Episode, PublishingConnection, Show, Task, TaskType, Transcript } from "./api.ts";
import { formatTime, h } from "./dom.ts";
import { type PublishingActions, PublishingPanel } from "./publishing.ts";
import { formatBytes } from "./upload.ts";

const TASKS: { type: TaskType; label: string }[] = [
  { type: "AUDIO_EXTRACTION", label: "Podcast audio" },
  { type: "VIDEO_TRANSCODE", label: "Video" },
  { type: "TRANSCRIPT_GENERATION", label: "Transcript" },
  { type: "CHAPTER_DETECTION", label: "Chapters" },
];

const STATUS_LABELS: Record<Episode["status"], string> = {
  AWAITING_UPLOAD: "Awaiting upload",
  UPLOADED: "Queued",
  PROCESSING: "Processing",
  PROCESSED: "Processed",
  FAILED: "Failed",
};

const TASK_STATUS_LABELS: Record<Task["status"], string> = {
  PENDING: "Waiting",
  PROCESSING: "Working",
  COMPLETED: "Done",
  FAILED: "Failed",
  SKIPPED: "Skipped",
};

/** Each resolves with the reason it failed, or null when it was done. */
export interface EpisodeActions extends PublishingActions {
  retry: (episode: Episode) => Promise<string | null>;
  /** The episode's transcript, or null when it could not be fetched. */
  transcript: (episode: Episode) => Promise<Transcript | null>;
}

export class EpisodeCard {
  readonly element: HTMLLIElement;
  episode: Episode;
  private readonly heading: HTMLHeadingElement;
  private readonly status: HTMLSpanElement;
  private readonly description: HTMLParagraphElement;
  private readonly meta: HTMLParagraphElement;
  private readonly tasks = new Map<
    TaskType,
    { bar: HTMLElement; state: HTMLElement; error: HTMLElement }
  >();
  private readonly failure: HTMLDivElement;
  private readonly failureReason: HTMLParagraphElement;
  private readonly retryMessage: HTMLParagraphElement;
  private readonly retryButton: HTMLButtonElement;
  private readonly outputs: HTMLDivElement;
  private outputsKey = "";
  private readonly publication: PublishingPanel;
  private transcript: Transcript | null = null;
  private fetchingTranscript = false;
  private readonly actions: EpisodeActions;

  constructor(
    episode: Episode,
    actions: EpisodeActions,
    shows: Show[],
    connections: PublishingConnection[],
  ) {
    this.episode = episode;
    this.actions = actions;
    const headingId = `episode-${cssId(episode.id)}`;
    this.heading = h("h3", { id: headingId, tabindex: -1 });
    this.status = h("span", { class: "status" });
    this.description = h("p", { class: "description" });
    this.meta = h("p", { class: "meta" });
    const taskList = h("ul", { class: "tasks", "aria-label": "Processing tasks" });
    for (const { type, label } of TASKS) {
      const bar = h("div", {
        class: "meter-fill",
        role: "progressbar",
        "aria-label": label,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": 0,
      });
      const state = h("span", { class: "task-state" });
      const error = h("p", { class: "task-error" });
      taskList.append(
        h(
          "li",
          { class: "task", "data-task": type },
          h("span", { class: "task-name" }, label),
          h("div", { class: "meter" }, bar),
          state,
          error,
        ),
      );
      this.tasks.set(type, { bar, state, error });
    }
    this.failureReason = h("p", { class: "failure-reason" });
    this.retryMessage = h("p", { class: "error", role: "alert" });
    this.retryButton = h("button", { type: "button" }, "Retry");
    this.retryButton.addEventListener("click", async () => {
      this.retryButton.disabled = true;
      this.retryMessage.textContent = "";
      const problem = await actions.retry(this.episode);
      this.retryButton.disabled = false;
      if (problem) this.retryMessage.textContent = problem;
      else this.heading.focus();
    });
    this.failure = h(
      "div",
      { class: "failure" },
      this.failureReason,
      this.retryButton,
      this.retryMessage,
    );
    this.outputs = h("div", { class: "outputs" });
    this.publication = new PublishingPanel(episode, actions, shows, connections);
    this.element = h(
      "li",
      { class: "episode", "data-episode-id": episode.id },
      h(
        "article",
        { "aria-labelledby": headingId },
        h("header", {}, this.heading, this.status),
        this.meta,
        this.description,
        taskList,
        this.failure,
        this.publication.element,
        this.outputs,
      ),
    );
    this.update(episode);
  }

  update(answered: Episode): void {
    const episode = this.withTranscript(answered);
    this.episode = episode;
    this.element.dataset.status = episode.status;
    this.heading.textContent = episode.title;
    this.status.textContent = STATUS_LABELS[episode.status];
    this.status.className = `status status-${episode.status.toLowerCase()}`;
    this.description.textContent = episode.description ?? "";
    this.description.hidden = !episode.description;
    const created = new Date(episode.createdAt);
    this.meta.textContent = [
      created.toLocaleString(),
      episode.originalFilename,
      episode.fileSize ? formatBytes(episode.fileSize) : null,
    ]
      .filter(Boolean)
      .join(" · ");
    for (const { type } of TASKS) {
      const task = episode.tasks.find((candidate) => candidate.type === type);
      const parts = this.tasks.get(type);
      if (parts) updateTask(parts, task);
    }
    const failed = episode.status === "FAILED";
    this.failure.hidden = !failed;
    this.failureReason.textContent = failed
      ? `Processing failed: ${episode.failureReason ?? "no reason given"}`
      : "";
    if (!failed) this.retryMessage.textContent = "";
    this.publication.update(episode);
    this.renderOutputs(episode);
  }

  /** Adds the transcript fetched before, or fetches it once the episode has one. */
  private withTranscript(episode: Episode): Episode {
    if (!episode.outputs.transcriptAvailable) this.transcript = null;
    if (episode.outputs.transcriptSegments !== undefined || !episode.outputs.transcriptAvailable) {
      return episode;
    }
    if (this.transcript) return { ...episode, outputs: { ...episode.outputs, ...this.transcript } };
    if (episode.status === "PROCESSED" && !this.fetchingTranscript) {
      this.fetchingTranscript = true;
      void this.actions.transcript(episode).then((transcript) => {
        this.fetchingTranscript = false;
        if (!transcript) return;
        this.transcript = transcript;
        this.update(this.episode);
      });
    }
    return episode;
  }

  setShows(shows: Show[]): void {
    this.publication.setShows(shows);
  }

  setConnections(connections: PublishingConnection[]): void {
    this.publication.setConnections(connections);
  }

  private renderOutputs(episode: Episode): void {
    const { outputs } = episode;
    const key = JSON.stringify([
      episode.status,
      outputs.audioUrl,
      outputs.videoUrl,
      outputs.transcriptSegments?.length ?? 0,
      outputs.chapters,
      episode.exports,
    ]);
    if (key === this.outputsKey) return;
    this.outputsKey = key;
    this.outputs.replaceChildren();
    if (episode.status !== "PROCESSED") return;
    let audio: HTMLAudioElement | null = null;
    if (outputs.audioUrl) {
      audio = h("audio", {
        controls: true,
        preload: "metadata",
        src: outputs.audioUrl,
        "aria-label": `Listen to ${episode.title}`,
      });
      this.outputs.append(audio);
    }
    const seek = (seconds: number) => {
      if (!audio) return;
      audio.currentTime = seconds;
      void audio.play().catch(() => undefined);
    };
    if (outputs.videoUrl) {
      this.outputs.append(
        h(
          "details",
          { class: "video" },
          h("summary", {}, "Video"),
          h("video", { controls: true, preload: "none", src: outputs.videoUrl, width: 640 }),
        ),
      );
    }
    if (outputs.chapters?.length) {
      this.outputs.append(
        h("h4", {}, "Chapters"),
        h(
          "ol",
          { class: "chapters" },
          ...outputs.chapters.map((chapter) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "seek",
                  onclick: () => seek(chapter.start),
                  "aria-label": `Play from ${formatTime(chapter.start)}: ${chapter.title}`,
                },
                h("time", {}, formatTime(chapter.start)),
              ),
              ` ${chapter.title}`,
            ),
          ),
        ),
      );
    }
    const segments = outputs.transcriptSegments ?? [];
    if (segments.length) {
      this.outputs.append(
        h(
          "details",
          { class: "transcript" },
          h("summary", {}, "Transcript"),
          h(
            "ol",
            {},
            ...segments.map((segment) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "seek",
                    onclick: () => seek(segment.start),
                    "aria-label": `Play from ${formatTime(segment.start)}`,
                  },
                  h("time", {}, formatTime(segment.start)),
                ),
                segment.speaker ? h("strong", {}, ` ${segment.speaker}: `) : " ",
                segment.text,
              ),
            ),
          ),
        ),
      );
    }
    const downloads: [string, string | null][] = [
      ["Audio (MP3)", outputs.audioUrl],
      ["Video (MP4)", outputs.videoUrl],
    ];
    const links = downloads.filter((entry): entry is [string, string] => Boolean(entry[1]));
    if (outputs.transcript) {
      links.push([
        "Transcript (text)",
        URL.createObjectURL(new Blob([outputs.transcript], { type: "text/plain" })),
      ]);
    }
    if (links.length) {
      this.outputs.append(
        h("h4", {}, "Downloads"),
        h(
          "ul",
          { class: "downloads" },
          ...links.map(([label, href]) =>
            h("li", {}, h("a", { href, download: downloadName(episode, label) }, label)),
          ),
        ),
      );
    }
    const exported: [string, string | null | undefined][] = [
      ["Captions (VTT)", episode.exports?.vttUrl],
      ["Captions (SRT)", episode.exports?.srtUrl],
      ["Transcript (JSON)", episode.exports?.jsonTranscriptUrl],
      ["Chapters (JSON)", episode.exports?.chaptersUrl],
      ["Transcript as plain text", episode.exports?.textUrl],
    ];
    const exportLinks = exported.filter((entry): entry is [string, string] => Boolean(entry[1]));
    if (exportLinks.length) {
      this.outputs.append(
        h("h4", {}, "Exports"),
        h(
          "ul",
          { class: "downloads exports" },
          ...exportLinks.map(([label, href]) => h("li", {}, h("a", { href }, label))),
        ),
      );
    }
  }
}

function updateTask(
  parts: { bar: HTMLElement; state: HTMLElement; error: HTMLElement },
  task: Task | undefined,
): void {
  const status = task?.status ?? "PENDING";
  const ended = status === "COMPLETED" || status === "SKIPPED";
  const progress = ended ? 100 : Math.max(0, Math.min(100, task?.progress ?? 0));
  parts.bar.setAttribute("aria-valuenow", String(progress));
  parts.bar.setAttribute("aria-valuetext", `${TASK_STATUS_LABELS[status]}, ${progress}%`);
  parts.bar.style.width = `${progress}%`;
  parts.bar.dataset.status = status;
  parts.state.textContent =
    status === "PROCESSING"
      ? `${TASK_STATUS_LABELS[status]} ${progress}%`
      : TASK_STATUS_LABELS[status];
  parts.error.textContent = task?.error ?? "";
  parts.error.hidden = !task?.error;
}

function downloadName(episode: Episode, label: string): string {
  const base = episode.title.replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "") || "episode";
  if (label.startsWith("Audio")) return `${base}.mp3`;
  if (label.startsWith("Video")) return `${base}.mp4`;
  return `${base}.txt`;
}

function cssId(id: string): string {
  return id.replace(/[^\w-]/g, "_");
}
