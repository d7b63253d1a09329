/**
 * A processed episode's publishing panel: the show it belongs to, where to publish it (the
 * show's feed, Transistor, YouTube — each offered only when it can work), when, and the list of
 * its publications with their live status, upload progress, remote link, reason and Retry.
 * Built once and updated in place, so the keyboard focus stays where it was.
 */
import type {
  Destination,
  Episode,
  Publication,
  PublishingConnection,
  PublishingService,
  Show,
  YouTubePrivacy,
} from "./api.ts";
import { h } from "./dom.ts";
import { fillShowSelect } from "./shows.ts";
import { formatBytes } from "./upload.ts";

export interface PublishRequest {
  /** null publishes now. */
  publishAt: string | null;
  destinations: Destination[];
  /** Only with YOUTUBE. */
  youtubePrivacy: YouTubePrivacy | null;
}

/** Each resolves with the reason it failed, or null when it was done. */
export interface PublishingActions {
  setShow: (episode: Episode, showId: string | null) => Promise<string | null>;
  publish: (episode: Episode, request: PublishRequest) => Promise<string | null>;
  unpublish: (episode: Episode) => Promise<string | null>;
  retryPublication: (publication: Publication) => Promise<string | null>;
}

export const DESTINATION_NAMES: Record<Destination, string> = {
  FEED: "Show feed",
  TRANSISTOR: "Transistor",
  YOUTUBE: "YouTube",
};

const REMOTE_LINKS: Record<Destination, string> = {
  FEED: "Open",
  TRANSISTOR: "Open on Transistor",
  YOUTUBE: "Watch on YouTube",
};

const DESTINATIONS: Destination[] = ["FEED", "TRANSISTOR", "YOUTUBE"];

export class PublishingPanel {
  readonly element: HTMLDivElement;
  private readonly select: HTMLSelectElement;
  private readonly state: HTMLParagraphElement;
  private readonly when: HTMLInputElement;
  private readonly choices = new Map<
    Destination,
    { box: HTMLInputElement; note: HTMLSpanElement; touched: boolean }
  >();
  private readonly privacy: HTMLSelectElement;
  private readonly privacyField: HTMLDivElement;
  private readonly publishButton: HTMLButtonElement;
  private readonly unpublishButton: HTMLButtonElement;
  private readonly message: HTMLParagraphElement;
  private readonly list: PublicationList;
  private connections: PublishingConnection[] = [];
  private episode: Episode;

  constructor(
    episode: Episode,
    actions: PublishingActions,
    shows: Show[],
    connections: PublishingConnection[],
  ) {
    this.episode = episode;
    const id = `pub-${episode.id.replace(/[^\w-]/g, "_")}`;
    this.select = h("select", { id: `${id}-show` });
    this.state = h("p", { class: "publication-state", role: "status" });
    this.when = h("input", { id: `${id}-when`, type: "datetime-local" });
    this.publishButton = h("button", { type: "button" }, "Publish");
    this.unpublishButton = h("button", { type: "button", class: "secondary" }, "Unpublish");
    this.message = h("p", { class: "error", role: "alert" });
    const run = async (button: HTMLButtonElement, action: () => Promise<string | null>) => {
      button.disabled = true;
      this.message.textContent = "";
      const problem = await action();
      button.disabled = false;
      if (problem) this.message.textContent = problem;
    };
    this.select.addEventListener("change", () =>
      run(this.publishButton, () => actions.setShow(this.episode, this.select.value || null)),
    );

    const boxes = h("div", { class: "destinations" });
    for (const destination of DESTINATIONS) {
      const box = h("input", {
        type: "checkbox",
        id: `${id}-to-${destination.toLowerCase()}`,
        value: destination,
      });
      const note = h("span", { class: "optional" });
      const choice = { box, note, touched: false };
      box.addEventListener("change", () => {
        choice.touched = true;
        this.renderChoices();
      });
      this.choices.set(destination, choice);
      boxes.append(
        h(
          "label",
          { class: "checkbox", for: box.id },
          box,
          ` ${destination === "FEED" ? "The show's feed" : DESTINATION_NAMES[destination]} `,
          note,
        ),
      );
    }
    this.privacy = h(
      "select",
      { id: `${id}-privacy` },
      h("option", { value: "PUBLIC" }, "Public"),
      h("option", { value: "UNLISTED" }, "Unlisted"),
      h("option", { value: "PRIVATE" }, "Private"),
    );
    this.privacyField = h(
      "div",
      {},
      h("label", { for: this.privacy.id }, "YouTube privacy"),
      this.privacy,
    );

    this.publishButton.addEventListener("click", () =>
      run(this.publishButton, async () => {
        const destinations = DESTINATIONS.filter((destination) => {
          const box = this.choices.get(destination)?.box;
          return box?.checked && !box.disabled;
        });
        if (!destinations.length) {
          return "Choose where to publish: the show's feed, Transistor or YouTube.";
        }
        const at = this.when.value ? new Date(this.when.value).toISOString() : null;
        return actions.publish(this.episode, {
          publishAt: at,
          destinations,
          youtubePrivacy: destinations.includes("YOUTUBE")
            ? (this.privacy.value as YouTubePrivacy)
            : null,
        });
      }),
    );
    this.unpublishButton.addEventListener("click", () =>
      run(this.unpublishButton, () => actions.unpublish(this.episode)),
    );
    this.list = new PublicationList(actions);
    this.element = h(
      "div",
      { class: "publication" },
      h("label", { for: this.select.id }, "Show"),
      this.select,
      this.state,
      h(
        "fieldset",
        { class: "publish-to" },
        h("legend", {}, "Publish to"),
        boxes,
        this.privacyField,
      ),
      h(
        "label",
        { for: this.when.id },
        "Publish at ",
        h("span", { class: "optional" }, "(optional; now when empty)"),
      ),
      this.when,
      this.publishButton,
      this.unpublishButton,
      this.message,
      this.list.element,
    );
    this.connections = connections;
    this.setShows(shows);
    this.update(episode);
  }

  setShows(shows: Show[]): void {
    fillShowSelect(this.select, shows, "No show");
    this.select.value = this.episode.show?.id ?? "";
  }

  setConnections(connections: PublishingConnection[]): void {
    this.connections = connections;
    this.renderChoices();
  }

  update(episode: Episode): void {
    this.episode = episode;
    this.element.hidden = episode.status !== "PROCESSED";
    const showId = episode.show?.id ?? "";
    if (![...this.select.options].some((option) => option.value === showId) && episode.show) {
      this.select.append(h("option", { value: episode.show.id }, episode.show.title));
    }
    this.select.value = showId;
    this.unpublishButton.hidden = !episode.published && !episode.publishAt;
    const again = episode.publishAt || episode.publications.some((p) => p.destination !== "FEED");
    this.publishButton.textContent = again ? "Publish again" : "Publish";
    const at = episode.publishAt ? new Date(episode.publishAt) : null;
    this.state.textContent = !episode.show
      ? "Not in a show: choose one to publish it in a feed."
      : !at
        ? `Not published in “${episode.show.title}”.`
        : episode.published
          ? `Published in “${episode.show.title}” on ${at.toLocaleString()}.`
          : `Scheduled for ${at.toLocaleString()} in “${episode.show.title}”.`;
    this.element.dataset.published = episode.published
      ? "true"
      : episode.publishAt
        ? "scheduled"
        : "false";
    this.renderChoices();
    this.list.update(episode.publications);
  }

  /** Offers each destination only when it can work, and says why not otherwise. */
  private renderChoices(): void {
    for (const destination of DESTINATIONS) {
      const choice = this.choices.get(destination);
      if (!choice) continue;
      const why = this.unavailable(destination);
      choice.box.disabled = why !== null;
      if (why !== null) choice.box.checked = false;
      // The feed is the default wherever the episode has one, until the producer decides.
      else if (destination === "FEED" && !choice.touched) choice.box.checked = true;
      choice.note.textContent = why ?? this.detail(destination);
    }
    this.privacyField.hidden = !this.choices.get("YOUTUBE")?.box.checked;
  }

  private unavailable(destination: Destination): string | null {
    if (destination === "FEED") return this.episode.show ? null : "(put the episode in a show)";
    const service = destination as PublishingService;
    const name = DESTINATION_NAMES[destination];
    const connection = this.connections.find((candidate) => candidate.service === service);
    if (!connection || connection.status === "PENDING") return `(connect ${name} first)`;
    if (connection.status === "BROKEN") return `(the connection is broken: connect ${name} again)`;
    if (service === "TRANSISTOR" && !connection.transistorShow) {
      return "(choose the Transistor show under Connections)";
    }
    return null;
  }

  private detail(destination: Destination): string {
    const connection = this.connections.find((candidate) => candidate.service === destination);
    if (destination === "FEED") return this.episode.show ? `(“${this.episode.show.title}”)` : "";
    if (destination === "TRANSISTOR" && connection?.transistorShow) {
      return `(“${connection.transistorShow.title}”)`;
    }
    return connection?.accountName ? `(${connection.accountName})` : "";
  }
}

const STATUS_LABELS: Record<Publication["status"], string> = {
  QUEUED: "Queued",
  UPLOADING: "Uploading",
  PROCESSING: "Processing",
  PUBLISHED: "Published",
  SCHEDULED: "Scheduled",
  FAILED: "Failed",
};

interface Row {
  item: HTMLLIElement;
  status: HTMLParagraphElement;
  meter: HTMLDivElement;
  bar: HTMLDivElement;
  bytes: HTMLSpanElement;
  link: HTMLAnchorElement;
  reason: HTMLParagraphElement;
  note: HTMLParagraphElement;
  retry: HTMLButtonElement;
  retryMessage: HTMLParagraphElement;
  publication: Publication;
}

/** The episode's publications, one row per destination, changed in place by each update. */
class PublicationList {
  readonly element: HTMLDivElement;
  private readonly list: HTMLUListElement;
  private readonly rows = new Map<Destination, Row>();
  private readonly actions: PublishingActions;

  constructor(actions: PublishingActions) {
    this.actions = actions;
    this.list = h("ul", { class: "publications", "aria-label": "Publications" });
    this.element = h("div", {}, h("h4", {}, "Publications"), this.list);
    this.element.hidden = true;
  }

  update(publications: Publication[]): void {
    this.element.hidden = publications.length === 0;
    const present = new Set(publications.map((publication) => publication.destination));
    for (const [destination, row] of this.rows) {
      if (present.has(destination)) continue;
      row.item.remove();
      this.rows.delete(destination);
    }
    for (const destination of DESTINATIONS) {
      const publication = publications.find((p) => p.destination === destination);
      if (!publication) continue;
      let row = this.rows.get(destination);
      if (!row) {
        row = this.row(publication);
        this.rows.set(destination, row);
        const next = DESTINATIONS.slice(DESTINATIONS.indexOf(destination) + 1)
          .map((later) => this.rows.get(later)?.item)
          .find(Boolean);
        this.list.insertBefore(row.item, next ?? null);
      }
      render(row, publication);
    }
  }

  private row(publication: Publication): Row {
    const name = DESTINATION_NAMES[publication.destination];
    const bar = h("div", {
      class: "meter-fill",
      role: "progressbar",
      "aria-label": `Upload to ${name}`,
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": 0,
    });
    const retry = h(
      "button",
      { type: "button", class: "secondary", "aria-label": `Retry publishing to ${name}` },
      "Retry",
    );
    const row: Row = {
      item: h("li", { "data-destination": publication.destination }),
      // Announced when the status changes, not at every byte.
      status: h("p", { class: "publication-status", role: "status" }),
      meter: h("div", { class: "meter" }, bar),
      bar,
      bytes: h("span", { class: "publication-bytes" }),
      link: h(
        "a",
        { target: "_blank", rel: "noopener noreferrer" },
        REMOTE_LINKS[publication.destination],
      ),
      reason: h("p", { class: "publication-reason" }),
      note: h("p", { class: "hint" }),
      retry,
      retryMessage: h("p", { class: "error", role: "alert" }),
      publication,
    };
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      row.retryMessage.textContent = "";
      const problem = await this.actions.retryPublication(row.publication);
      retry.disabled = false;
      if (problem) row.retryMessage.textContent = problem;
    });
    row.item.append(
      h("strong", { class: "publication-name" }, name),
      row.status,
      row.meter,
      row.bytes,
      row.link,
      row.reason,
      row.note,
      row.retry,
      row.retryMessage,
    );
    return row;
  }
}

function render(row: Row, publication: Publication): void {
  row.publication = publication;
  const { status } = publication;
  row.item.dataset.status = status;
  const at = publication.publishAt ? new Date(publication.publishAt).toLocaleString() : null;
  const waiting = status === "QUEUED" && publication.waitingReason;
  const label =
    status === "SCHEDULED" && at
      ? `Scheduled for ${at}`
      : status === "PROCESSING" && publication.destination !== "FEED"
        ? `Processing at ${DESTINATION_NAMES[publication.destination]}`
        : waiting
          ? "Waiting"
          : STATUS_LABELS[status];
  if (row.status.textContent !== label) row.status.textContent = label;

  const uploading = status === "UPLOADING";
  const total = publication.bytesTotal ?? 0;
  const percent = total ? Math.min(100, Math.floor((publication.bytesSent * 100) / total)) : 0;
  row.meter.hidden = !uploading;
  row.bytes.hidden = !uploading;
  row.bar.setAttribute("aria-valuenow", String(percent));
  row.bar.setAttribute("aria-valuetext", `${percent}%`);
  row.bar.style.width = `${percent}%`;
  row.bytes.textContent = total
    ? `${formatBytes(publication.bytesSent)} of ${formatBytes(total)} (${percent}%)`
    : "";

  const out = (status === "PUBLISHED" || status === "SCHEDULED") && publication.remoteUrl;
  row.link.hidden = !out;
  if (out && publication.remoteUrl) row.link.href = publication.remoteUrl;
  else row.link.removeAttribute("href");

  const until = publication.waitingUntil
    ? ` Until ${new Date(publication.waitingUntil).toLocaleString()}.`
    : "";
  const reason =
    status === "FAILED"
      ? (publication.failureReason ?? "No reason was given.")
      : publication.waitingReason
        ? `${publication.waitingReason}${until}`
        : "";
  row.reason.textContent = reason;
  row.reason.hidden = !reason;
  row.reason.classList.toggle("failure-reason", status === "FAILED");
  row.note.textContent = publication.captionsNote ?? "";
  row.note.hidden = !publication.captionsNote;
  const retryable = status === "FAILED" && publication.destination !== "FEED";
  row.retry.hidden = !retryable;
  if (!retryable) row.retryMessage.textContent = "";
}
