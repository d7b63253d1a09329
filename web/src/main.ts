/**
 * The Podflow dashboard: sign in with an API token (kept in sessionStorage, for this browser
 * session only), upload a recording straight to the engine's upload URL, and watch every episode
 * change live through `myEpisodesUpdated` — no polling. When the live connection drops a banner
 * says so; on reconnecting the list is fetched again, so nothing missed in between stays stale.
 * Over 300 lines because the session (sign-in, feed, list, upload form) shares one state and
 * reads best in one place; the card, the transfer and the API client are files of their own.
 */
import "./style.css";
import type { Client } from "graphql-ws";
import {
  ApiError,
  EPISODE_FIELDS,
  type Episode,
  PodflowApi,
  type Publication,
  type Refusal,
  TRANSCRIPT_QUERY,
  type Transcript,
} from "./api.ts";
import { ConnectionsPanel } from "./connections.ts";
import { byId } from "./dom.ts";
import { type EpisodeActions, EpisodeCard } from "./episodes.ts";
import { fillShowSelect, ShowsPanel } from "./shows.ts";
import { formatBytes, SpeedMeter, uploadFile } from "./upload.ts";

const TOKEN_KEY = "podflow.token";
const PAGE_SIZE = 20;
/** A page of RESYNC_MAX episodes must stay under Podflow's query cost limit (10,000). */
const RESYNC_MAX = 60;

const signInSection = byId("sign-in");
const signInForm = byId<HTMLFormElement>("sign-in-form");
const tokenInput = byId<HTMLInputElement>("token");
const signInError = byId("sign-in-error");
const account = byId("account");
const viewerEmail = byId("viewer-email");
const dashboard = byId("dashboard");
const banner = byId("live-banner");
const list = byId<HTMLOListElement>("episodes");
const empty = byId("episodes-empty");
const loadMore = byId<HTMLButtonElement>("load-more");
const uploadForm = byId<HTMLFormElement>("upload-form");
const uploadButton = byId<HTMLButtonElement>("upload-button");
const uploadError = byId("upload-error");
const uploadProgress = byId("upload-progress");
const uploadBar = byId("upload-bar");
const uploadStatus = byId("upload-status");
const uploadShow = byId<HTMLSelectElement>("upload-show");

interface Session {
  api: PodflowApi;
  live: Client;
  stopFeed: () => void;
  cards: Map<string, EpisodeCard>;
  endCursor: string | null;
  hasNextPage: boolean;
  ended: boolean;
  /** Counts live messages; a card remembers the count at its last live update. */
  liveCount: number;
  liveSeen: Map<string, number>;
  /** Live states of episodes not shown yet (older than the loaded pages). */
  unshown: Map<string, Episode>;
  /** Ids of the Transistor and YouTube publications last seen FAILED. */
  failedPublications: Set<string>;
}

let session: Session | null = null;

// The producer's shows: the Shows panel keeps the list; the upload form and each card offer it.
const showsPanel = new ShowsPanel(
  () => session?.api ?? null,
  (shows) => {
    fillShowSelect(uploadShow, shows, "No show");
    for (const card of session?.cards.values() ?? []) card.setShows(shows);
  },
);

// The producer's Transistor and YouTube connections: each card offers what is connected.
const connectionsPanel = new ConnectionsPanel(
  () => session?.api ?? null,
  (connections) => {
    for (const card of session?.cards.values() ?? []) card.setConnections(connections);
  },
);

const EPISODES_QUERY = `query DashboardEpisodes($first: Int!, $after: String) {
  episodes(first: $first, after: $after) {
    edges { node { ...DashboardEpisode } }
    pageInfo { endCursor hasNextPage }
  }
}
${EPISODE_FIELDS}`;

type EpisodesPage = {
  episodes: {
    edges: { node: Episode }[];
    pageInfo: { endCursor: string | null; hasNextPage: boolean };
  };
};

signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  signInError.textContent = "";
  if (!token) {
    signInError.textContent = "Enter your API token.";
    tokenInput.focus();
    return;
  }
  const button = signInForm.querySelector("button");
  if (button) button.disabled = true;
  try {
    await signIn(token);
  } finally {
    if (button) button.disabled = false;
  }
});

byId("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  endSession();
  tokenInput.value = "";
  showSignIn();
  tokenInput.focus();
});

loadMore.addEventListener("click", async () => {
  const current = session;
  if (!current?.endCursor) return;
  loadMore.disabled = true;
  const sentAt = current.liveCount;
  try {
    const page = await current.api.request<EpisodesPage>(EPISODES_QUERY, {
      first: PAGE_SIZE,
      after: current.endCursor,
    });
    if (current !== session) return;
    for (const edge of page.episodes.edges) upsert(current, edge.node, sentAt);
    current.endCursor = page.episodes.pageInfo.endCursor;
    current.hasNextPage = page.episodes.pageInfo.hasNextPage;
    renderListState(current);
  } catch (error) {
    showBanner(`Could not load more episodes: ${(error as Error).message}`);
  } finally {
    loadMore.disabled = false;
  }
});

uploadForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (session) void upload(session);
});

// A recording dropped anywhere on the upload panel is the episode file; its name, the title
// until one is typed.
const fileInput = byId<HTMLInputElement>("file");
const titleInput = byId<HTMLInputElement>("title");
const uploadPanel = uploadForm.closest("section") ?? uploadForm;
uploadPanel.addEventListener("dragover", (event) => {
  event.preventDefault();
  uploadPanel.classList.add("dropping");
});
uploadPanel.addEventListener("dragleave", () => uploadPanel.classList.remove("dropping"));
uploadPanel.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadPanel.classList.remove("dropping");
  const files = (event as DragEvent).dataTransfer?.files;
  if (!files?.length) return;
  fileInput.files = files;
  fileInput.dispatchEvent(new Event("change"));
});
fileInput.addEventListener("change", () => {
  const file = fileInput.files?.[0];
  if (file && !titleInput.value.trim()) titleInput.value = file.name.replace(/\.[^.]+$/, "");
});

let uploading = false;
window.addEventListener("beforeunload", (event) => {
  // Leaving mid-upload loses it: the browser asks first.
  if (uploading) event.preventDefault();
});

async function signIn(token: string): Promise<void> {
  const api = new PodflowApi(token);
  let email: string;
  try {
    const data = await api.request<{ viewer: { email: string } }>("query { viewer { email } }");
    email = data.viewer.email;
  } catch (error) {
    const refused = error instanceof ApiError && error.code === "UNAUTHENTICATED";
    signInError.textContent = refused
      ? "That API token was not accepted: it is wrong, expired or revoked. Check it and try again."
      : (error as Error).message;
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn();
    tokenInput.focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  viewerEmail.textContent = email;
  signInSection.hidden = true;
  account.hidden = false;
  dashboard.hidden = false;
  startSession(api);
  byId("main").focus();
}

function showSignIn(): void {
  signInSection.hidden = false;
  account.hidden = true;
  dashboard.hidden = true;
  banner.hidden = true;
}

function startSession(api: PodflowApi): void {
  endSession();
  const current: Session = {
    api,
    cards: new Map(),
    endCursor: null,
    hasNextPage: false,
    ended: false,
    liveCount: 0,
    liveSeen: new Map(),
    unshown: new Map(),
    failedPublications: new Set(),
    stopFeed: () => undefined,
    live: api.live({
      connected: (reconnected) => {
        hideBanner();
        // The list is fetched again each time the feed is up (it was fetched at start too), so
        // no change falls between the two; after a reconnect this catches up on what was missed.
        void resync(current, reconnected);
      },
      disconnected: () => {
        if (!current.ended) showBanner("Live updates are disconnected. Reconnecting…");
      },
      refused: () => {
        if (current.ended) return;
        sessionStorage.removeItem(TOKEN_KEY);
        endSession();
        showSignIn();
        signInError.textContent = "Your API token is no longer accepted. Sign in again.";
      },
    }),
  };
  current.stopFeed = current.live.subscribe<{ myEpisodesUpdated: Episode }>(
    {
      query: `subscription Dashboard { myEpisodesUpdated { ...DashboardEpisode } } ${EPISODE_FIELDS}`,
    },
    {
      next: (message) => {
        const episode = message.data?.myEpisodesUpdated;
        if (episode && session === current) {
          current.liveCount++;
          current.liveSeen.set(episode.id, current.liveCount);
          upsert(current, episode, "live");
          // A publication that just failed may have found its connection broken.
          if (newlyFailed(current, episode)) void connectionsPanel.load();
        }
        if (session === current) renderListState(current);
      },
      error: (error) => {
        if (!current.ended) showBanner(`Live updates stopped: ${describe(error)}`);
      },
      complete: () => undefined,
    },
  );
  session = current;
  list.replaceChildren();
  renderListState(current);
  void resync(current, false);
  void showsPanel.load();
  void connectionsPanel.load();
}

function endSession(): void {
  const current = session;
  session = null;
  if (!current) return;
  current.ended = true;
  current.stopFeed();
  void current.live.dispose();
  list.replaceChildren();
  showsPanel.clear();
  connectionsPanel.clear();
}

async function resync(current: Session, reconnected: boolean): Promise<void> {
  try {
    // At most RESYNC_MAX: a bigger page would pass Podflow's query cost limit.
    const loaded = Math.min(RESYNC_MAX, Math.max(PAGE_SIZE, current.cards.size));
    const sentAt = current.liveCount;
    const page = await current.api.request<EpisodesPage>(EPISODES_QUERY, { first: loaded });
    if (current !== session) return;
    for (const edge of page.episodes.edges) upsert(current, edge.node, sentAt);
    if (!reconnected || !current.endCursor) {
      current.endCursor = page.episodes.pageInfo.endCursor;
      current.hasNextPage = page.episodes.pageInfo.hasNextPage;
    }
    renderListState(current);
  } catch (error) {
    showBanner(`Could not load your episodes: ${(error as Error).message}`);
  }
}

/** Newest first: by createdAt, then id, as the API pages them. */
function newerFirst(a: Episode, b: Episode): number {
  return b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
}

/**
 * Shows an episode's state. `source` is "live" for the feed, or the live count when the request
 * that answered it was sent: the feed delivers every change in commit order, so a live update
 * that arrived after a request went out is at least as new as its answer, which is then dropped.
 */
function upsert(current: Session, answered: Episode, source: "live" | number): void {
  const newerLive = source !== "live" && (current.liveSeen.get(answered.id) ?? 0) > source;
  const known = current.cards.get(answered.id);
  if (known) {
    if (!newerLive) known.update(answered);
    return;
  }
  const episode = (newerLive && current.unshown.get(answered.id)) || answered;
  current.unshown.delete(episode.id);
  // A live change to an episode older than the loaded pages waits for "Load more".
  const cards = [...current.cards.values()];
  const oldest = cards.at(-1)?.episode;
  if (source === "live" && current.hasNextPage && oldest && newerFirst(episode, oldest) > 0) {
    current.unshown.set(episode.id, episode);
    return;
  }
  const card = new EpisodeCard(
    episode,
    actionsFor(current),
    showsPanel.shows,
    connectionsPanel.connections,
  );
  const before = cards.find((other) => newerFirst(episode, other.episode) < 0);
  list.insertBefore(card.element, before?.element ?? null);
  const ordered = [...cards, card].sort((a, b) => newerFirst(a.episode, b.episode));
  current.cards.clear();
  for (const entry of ordered) current.cards.set(entry.episode.id, entry);
}

function renderListState(current: Session): void {
  empty.hidden = current.cards.size > 0;
  loadMore.hidden = !current.hasNextPage;
}

async function retry(current: Session, episode: Episode): Promise<string | null> {
  const sentAt = current.liveCount;
  try {
    const data = await current.api.request<{
      retryEpisode: { __typename: string; message?: string; episode?: Episode };
    }>(
      `mutation Retry($id: ID!) { retryEpisode(id: $id) {
         __typename
         ... on RetryEpisodePayload { episode { ...DashboardEpisode } }
         ... on Error { message } } }
       ${EPISODE_FIELDS}`,
      { id: episode.id },
    );
    const result = data.retryEpisode;
    if (result.episode) {
      upsert(current, result.episode, sentAt);
      return null;
    }
    return result.message ?? "The episode could not be retried.";
  } catch (error) {
    return (error as Error).message;
  }
}

function actionsFor(current: Session): EpisodeActions {
  return {
    retry: (episode) => retry(current, episode),
    transcript: async (episode) => {
      try {
        const data = await current.api.request<{
          episode: { outputs: Transcript } | null;
        }>(TRANSCRIPT_QUERY, { id: episode.id });
        return data.episode?.outputs ?? null;
      } catch (error) {
        showBanner(`Could not load the transcript: ${(error as Error).message}`);
        return null;
      }
    },
    setShow: (episode, showId) =>
      changePublication(current, "setEpisodeShow", "SetEpisodeShowInput", {
        episodeId: episode.id,
        showId,
      }),
    publish: (episode, request) =>
      changePublication(current, "publishEpisode", "PublishEpisodeInput", {
        episodeId: episode.id,
        destinations: request.destinations,
        ...(request.publishAt ? { publishAt: request.publishAt } : {}),
        ...(request.youtubePrivacy ? { youtubePrivacy: request.youtubePrivacy } : {}),
      }),
    retryPublication: (publication) => retryPublication(current, publication),
    unpublish: (episode) =>
      changePublication(current, "unpublishEpisode", "UnpublishEpisodeInput", {
        episodeId: episode.id,
      }),
  };
}

/**
 * Starts a FAILED publication again. Its progress arrives by the episode's live updates, as
 * every publication's does.
 */
async function retryPublication(
  current: Session,
  publication: Publication,
): Promise<string | null> {
  try {
    const data = await current.api.request<{ retryPublication: Refusal }>(
      `mutation RetryPublication($id: ID!) { retryPublication(id: $id) {
         __typename ... on Error { message } } }`,
      { id: publication.id },
    );
    const result = data.retryPublication;
    if (result.__typename === "PublicationPayload") return null;
    return result.message ?? "The publication could not be retried.";
  } catch (error) {
    return (error as Error).message;
  }
}

function newlyFailed(current: Session, episode: Episode): boolean {
  let newly = false;
  for (const publication of episode.publications) {
    if (publication.destination === "FEED") continue;
    if (publication.status !== "FAILED") current.failedPublications.delete(publication.id);
    else if (!current.failedPublications.has(publication.id)) {
      current.failedPublications.add(publication.id);
      newly = true;
    }
  }
  return newly;
}

/** One of the mutations answering `EpisodePayload` or an error; null when it was done. */
async function changePublication(
  current: Session,
  mutation: string,
  inputType: string,
  input: Record<string, unknown>,
): Promise<string | null> {
  const sentAt = current.liveCount;
  try {
    const data = await current.api.request<Record<string, Refusal & { episode?: Episode }>>(
      `mutation Change($input: ${inputType}!) { ${mutation}(input: $input) {
         __typename
         ... on EpisodePayload { episode { ...DashboardEpisode } }
         ${mutation === "publishEpisode" ? "... on ValidationError { problems { field message } }" : ""}
         ... on Error { message } } }
       ${EPISODE_FIELDS}`,
      { input },
    );
    const result = data[mutation];
    if (result?.episode) {
      upsert(current, result.episode, sentAt);
      return null;
    }
    const problems = result?.problems?.map((problem) => `${problem.field}: ${problem.message}`);
    return problems?.join(" ") || result?.message || "Podflow did not make the change.";
  } catch (error) {
    return (error as Error).message;
  }
}

type PrepareResult = {
  __typename: string;
  message?: string;
  problems?: { field: string; message: string }[];
  episode?: Episode;
  upload?: { url: string; method: string; tusUrl: string | null };
};

async function upload(current: Session): Promise<void> {
  const descriptionInput = byId<HTMLTextAreaElement>("description");
  const file = fileInput.files?.[0];
  const title = titleInput.value.trim();
  const description = descriptionInput.value.trim();
  uploadError.textContent = "";
  if (!file) return fail("Choose the episode file to upload.", fileInput);
  if (!title) return fail("Give the episode a title.", titleInput);

  uploadButton.disabled = true;
  uploading = true;
  setUploadProgress(0, file.size, 0);
  uploadProgress.hidden = false;
  const sentAt = current.liveCount;
  try {
    const prepared = (
      await current.api.request<{ prepareUpload: PrepareResult }>(
        `mutation Prepare($input: PrepareUploadInput!) { prepareUpload(input: $input) {
           __typename
           ... on PrepareUploadPayload { episode { ...DashboardEpisode } upload { url method tusUrl } }
           ... on ValidationError { problems { field message } }
           ... on Error { message } } }
         ${EPISODE_FIELDS}`,
        {
          input: {
            title,
            description: description || null,
            filename: file.name,
            filesize: file.size,
            showId: uploadShow.value || null,
          },
        },
      )
    ).prepareUpload;
    if (!prepared.episode || !prepared.upload) {
      const problems = prepared.problems?.map((problem) => problem.message).join(" ");
      throw new Error(problems || prepared.message || "Podflow did not accept the upload.");
    }
    upsert(current, prepared.episode, sentAt);
    const speed = new SpeedMeter();
    speed.add(0);
    const fileId = await uploadFile(file, prepared.upload, (sent, total) =>
      setUploadProgress(sent, total, speed.add(sent)),
    );
    uploadStatus.textContent = "Uploaded. Confirming…";
    const confirmed = (
      await current.api.request<{ confirmUpload: { __typename: string; message?: string } }>(
        `mutation Confirm($input: ConfirmUploadInput!) { confirmUpload(input: $input) {
           __typename ... on Error { message } } }`,
        { input: { episodeId: prepared.episode.id, fileId } },
      )
    ).confirmUpload;
    if (confirmed.__typename !== "ConfirmUploadPayload") {
      throw new Error(confirmed.message ?? "Podflow did not accept the uploaded file.");
    }
    uploadStatus.textContent = `“${title}” is uploaded; processing has started.`;
    uploadForm.reset();
  } catch (error) {
    uploadProgress.hidden = true;
    uploadError.textContent = (error as Error).message;
  } finally {
    uploading = false;
    uploadButton.disabled = false;
  }

  function fail(message: string, field: HTMLElement): void {
    uploadError.textContent = message;
    field.focus();
  }
}

function setUploadProgress(sent: number, total: number, bytesPerSecond: number): void {
  const percent = total ? Math.floor((sent * 100) / total) : 0;
  uploadBar.setAttribute("aria-valuenow", String(percent));
  uploadBar.setAttribute("aria-valuetext", `${percent}%`);
  uploadBar.style.width = `${percent}%`;
  const speed = bytesPerSecond > 0 ? ` · ${formatBytes(bytesPerSecond)}/s` : "";
  uploadStatus.textContent = `${formatBytes(sent)} of ${formatBytes(total)} (${percent}%)${speed}`;
}

function showBanner(message: string): void {
  banner.textContent = message;
  banner.hidden = false;
}

function hideBanner(): void {
  banner.hidden = true;
  banner.textContent = "";
}

function describe(error: unknown): string {
  if (Array.isArray(error))
    return error.map((item: { message?: string }) => item.message).join("; ");
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object" && "reason" in error) return String(error.reason);
  return "the connection closed";
}

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
else showSignIn();
