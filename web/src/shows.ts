/**
 * The Shows panel: the producer's shows with their feed URLs (Copy feed URL puts one on the
 * clipboard, or selects it where the clipboard is refused), and one form that creates a show or
 * edits the chosen one. The API's validation problems are shown under the fields they name.
 */
import { type PodflowApi, type Refusal, SHOW_FIELDS, type Show } from "./api.ts";
import { byId, h } from "./dom.ts";

const FIELDS = ["title", "description", "author", "ownerEmail", "language", "category"] as const;
type Field = (typeof FIELDS)[number];

const SHOWS_QUERY = `query DashboardShows { shows(first: 100) {
  edges { node { ...DashboardShow } } } } ${SHOW_FIELDS}`;

type ShowResult = Refusal & { show?: Show };

export class ShowsPanel {
  shows: Show[] = [];
  private readonly list = byId<HTMLUListElement>("shows");
  private readonly empty = byId("shows-empty");
  private readonly status = byId("shows-status");
  private readonly form = byId<HTMLFormElement>("show-form");
  private readonly heading = byId("show-form-heading");
  private readonly submitButton = byId<HTMLButtonElement>("show-submit");
  private readonly cancelButton = byId<HTMLButtonElement>("show-cancel");
  private readonly formError = byId("show-error");
  private readonly explicit = byId<HTMLInputElement>("show-explicit");
  private readonly inputs: Record<
    Field,
    HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement
  >;
  private editing: Show | null = null;

  constructor(
    private readonly api: () => PodflowApi | null,
    private readonly changed: (shows: Show[]) => void,
  ) {
    this.inputs = {
      title: byId("show-title"),
      description: byId("show-description"),
      author: byId("show-author"),
      ownerEmail: byId("show-owner-email"),
      language: byId("show-language"),
      category: byId("show-category"),
    };
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.save();
    });
    this.cancelButton.addEventListener("click", () => this.edit(null));
  }

  async load(): Promise<void> {
    const api = this.api();
    if (!api) return;
    try {
      const data = await api.request<{ shows: { edges: { node: Show }[] } }>(SHOWS_QUERY);
      if (api !== this.api()) return;
      this.shows = data.shows.edges.map((edge) => edge.node);
      this.render();
    } catch (error) {
      this.status.textContent = `Could not load your shows: ${(error as Error).message}`;
    }
  }

  clear(): void {
    this.shows = [];
    this.edit(null);
    this.render();
  }

  private render(): void {
    this.empty.hidden = this.shows.length > 0;
    this.list.replaceChildren(...this.shows.map((show) => this.item(show)));
    this.changed(this.shows);
  }

  private item(show: Show): HTMLLIElement {
    const url = h("code", { class: "feed-url" }, show.feedUrl);
    const copy = h("button", { type: "button", class: "secondary" }, "Copy feed URL");
    copy.setAttribute("aria-label", `Copy feed URL of ${show.title}`);
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(show.feedUrl);
        this.status.textContent = `The feed URL of “${show.title}” is copied.`;
      } catch {
        // No clipboard (an insecure origin, or refused): select the URL for Ctrl+C instead.
        const range = document.createRange();
        range.selectNodeContents(url);
        const selection = window.getSelection();
        selection?.removeAllRanges();
        selection?.addRange(range);
        this.status.textContent = "The feed URL is selected: press Ctrl+C (⌘C) to copy it.";
      }
    });
    const edit = h("button", { type: "button", class: "secondary" }, "Edit");
    edit.setAttribute("aria-label", `Edit ${show.title}`);
    edit.addEventListener("click", () => this.edit(show));
    return h(
      "li",
      { "data-show-id": show.id },
      h("strong", {}, show.title),
      ` · ${show.category}${show.explicit ? " · explicit" : ""}`,
      h("span", { class: "hint" }, " Feed URL:"),
      url,
      copy,
      edit,
    );
  }

  /** Fills the form with a show to edit, or empties it to create one (null). */
  private edit(show: Show | null): void {
    this.editing = show;
    this.clearProblems();
    this.form.reset();
    if (show) {
      for (const field of FIELDS) this.inputs[field].value = show[field];
      this.explicit.checked = show.explicit;
    }
    this.heading.textContent = show ? `Edit “${show.title}”` : "Create show";
    this.submitButton.textContent = show ? "Save show" : "Create show";
    this.cancelButton.hidden = !show;
    if (show) this.heading.focus();
  }

  private async save(): Promise<void> {
    const api = this.api();
    if (!api) return;
    this.clearProblems();
    const values = Object.fromEntries(
      FIELDS.map((field) => [field, this.inputs[field].value.trim()]),
    ) as Record<Field, string>;
    const editing = this.editing;
    const input = editing
      ? { showId: editing.id, ...values, explicit: this.explicit.checked }
      : { ...values, explicit: this.explicit.checked };
    const name = editing ? "updateShow" : "createShow";
    const type = editing ? "UpdateShowInput" : "CreateShowInput";
    this.submitButton.disabled = true;
    try {
      const data = await api.request<Record<string, ShowResult>>(
        `mutation SaveShow($input: ${type}!) { ${name}(input: $input) {
           __typename
           ... on ShowPayload { show { ...DashboardShow } }
           ... on ValidationError { problems { field message } }
           ... on Error { message } } }
         ${SHOW_FIELDS}`,
        { input },
      );
      const result = data[name];
      if (!result?.show) return this.refused(result);
      const saved = result.show;
      this.shows = editing
        ? this.shows.map((show) => (show.id === saved.id ? saved : show))
        : [saved, ...this.shows];
      this.render();
      this.edit(null);
      this.status.textContent = editing
        ? `“${saved.title}” is saved.`
        : `“${saved.title}” is created; its feed URL is ${saved.feedUrl}`;
    } catch (error) {
      this.formError.textContent = (error as Error).message;
    } finally {
      this.submitButton.disabled = false;
    }
  }

  private refused(result: ShowResult | undefined): void {
    const unplaced: string[] = [];
    let first: HTMLElement | null = null;
    for (const problem of result?.problems ?? []) {
      const field = FIELDS.find((name) => name === problem.field);
      if (!field) {
        unplaced.push(`${problem.field}: ${problem.message}`);
        continue;
      }
      const input = this.inputs[field];
      byId(`show-${field}-error`).textContent =
        `${labelOf(input)} ${problem.message.replace(/\.$/, "")}.`;
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
    this.formError.textContent =
      unplaced.join(" ") || (first ? "" : (result?.message ?? "Podflow did not accept the show."));
    (first ?? this.formError).focus();
  }

  private clearProblems(): void {
    this.formError.textContent = "";
    for (const field of FIELDS) {
      byId(`show-${field}-error`).textContent = "";
      this.inputs[field].removeAttribute("aria-invalid");
    }
  }
}

function labelOf(input: HTMLElement): string {
  const label = document.querySelector(`label[for="${input.id}"]`);
  return label?.textContent?.trim() ?? "";
}

/** Fills a show select with the producer's shows, keeping its choice when it still exists. */
export function fillShowSelect(select: HTMLSelectElement, shows: Show[], none: string): void {
  const chosen = select.value;
  select.replaceChildren(
    h("option", { value: "" }, none),
    ...shows.map((show) => h("option", { value: show.id }, show.title)),
  );
  if (shows.some((show) => show.id === chosen)) select.value = chosen;
}
