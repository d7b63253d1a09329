/**
 * The Connections panel: the producer's Transistor account (connected with a pasted API key,
 * with the show episodes go to) and YouTube channel (connected through Google's consent page,
 * opened in a new tab). The API's refusals are shown as it words them. No subscription reports
 * connections, so the panel asks again when the page becomes visible (back from Google's tab),
 * on "Check again", and when a card reports a failed publication (a connection may have broken).
 */
import {
  CONNECTION_FIELDS,
  type PodflowApi,
  type PublishingConnection,
  type PublishingService,
  type Refusal,
} from "./api.ts";
import { byId, h } from "./dom.ts";

const CONNECTIONS_QUERY = `query DashboardConnections { publishingConnections {
  ...DashboardConnection } } ${CONNECTION_FIELDS}`;

type TransistorShow = { id: string; title: string };
type ConnectionResult = Refusal & {
  connection?: PublishingConnection;
  transistorShows?: TransistorShow[] | null;
};

export class ConnectionsPanel {
  connections: PublishingConnection[] = [];
  private readonly error = byId("connections-error");
  private readonly transistorState = byId("transistor-state");
  private readonly transistorForm = byId<HTMLFormElement>("transistor-form");
  private readonly transistorKey = byId<HTMLInputElement>("transistor-key");
  private readonly transistorKeyError = byId("transistor-key-error");
  private readonly transistorConnect = byId<HTMLButtonElement>("transistor-connect");
  private readonly transistorError = byId("transistor-error");
  private readonly chooser = byId("transistor-show-chooser");
  private readonly showSelect = byId<HTMLSelectElement>("transistor-show");
  private readonly showSave = byId<HTMLButtonElement>("transistor-show-save");
  private readonly changeShow = byId<HTMLButtonElement>("transistor-change-show");
  private readonly transistorDisconnect = byId<HTMLButtonElement>("transistor-disconnect");
  private readonly youtubeState = byId("youtube-state");
  private readonly youtubeConsent = byId("youtube-consent");
  private readonly youtubeConsentLink = byId<HTMLAnchorElement>("youtube-consent-link");
  private readonly youtubeError = byId("youtube-error");
  private readonly youtubeConnect = byId<HTMLButtonElement>("youtube-connect");
  private readonly youtubeCheck = byId<HTMLButtonElement>("youtube-check");
  private readonly youtubeDisconnect = byId<HTMLButtonElement>("youtube-disconnect");
  private loading: Promise<void> | null = null;
  private reloadAgain = false;

  constructor(
    private readonly api: () => PodflowApi | null,
    private readonly changed: (connections: PublishingConnection[]) => void,
  ) {
    this.transistorForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.connectTransistor();
    });
    this.showSave.addEventListener("click", () => void this.chooseShow());
    this.changeShow.addEventListener("click", () => void this.offerShows(null));
    this.transistorDisconnect.addEventListener("click", () => void this.disconnect("TRANSISTOR"));
    this.youtubeConnect.addEventListener("click", () => void this.connectYouTube());
    this.youtubeCheck.addEventListener("click", () => void this.load());
    this.youtubeDisconnect.addEventListener("click", () => void this.disconnect("YOUTUBE"));
    // Back from Google's consent tab: the connection may have completed there.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") void this.load();
    });
    window.addEventListener("focus", () => void this.load());
  }

  /** Asks for the connections; a call while one is under way asks once more after it. */
  load(): Promise<void> {
    if (this.loading) {
      this.reloadAgain = true;
      return this.loading;
    }
    this.loading = this.fetch().finally(() => {
      this.loading = null;
      if (this.reloadAgain) {
        this.reloadAgain = false;
        void this.load();
      }
    });
    return this.loading;
  }

  private async fetch(): Promise<void> {
    const api = this.api();
    if (!api) return;
    try {
      const data = await api.request<{ publishingConnections: PublishingConnection[] }>(
        CONNECTIONS_QUERY,
      );
      if (api !== this.api()) return;
      this.error.textContent = "";
      this.set(data.publishingConnections);
    } catch (error) {
      this.error.textContent = `Could not load your connections: ${(error as Error).message}`;
    }
  }

  clear(): void {
    this.transistorForm.reset();
    this.chooser.hidden = true;
    this.youtubeConsent.hidden = true;
    for (const element of [
      this.error,
      this.transistorError,
      this.transistorKeyError,
      this.youtubeError,
    ]) {
      element.textContent = "";
    }
    this.set([]);
  }

  private of(service: PublishingService): PublishingConnection | undefined {
    return this.connections.find((connection) => connection.service === service);
  }

  private set(connections: PublishingConnection[]): void {
    this.connections = connections;
    this.render();
    this.changed(connections);
  }

  private render(): void {
    const transistor = this.of("TRANSISTOR");
    const connected = transistor?.status === "CONNECTED";
    this.transistorState.textContent = !transistor
      ? "Not connected."
      : transistor.status === "BROKEN"
        ? `The connection is broken: ${transistor.brokenReason ?? "Transistor refused it"}. Paste the API key again.`
        : transistor.status === "PENDING"
          ? "Not connected yet."
          : `Connected as ${transistor.accountName ?? "your account"}; episodes go to ${
              transistor.transistorShow
                ? `“${transistor.transistorShow.title}”`
                : "no show yet: choose one"
            }.`;
    this.transistorForm.hidden = connected;
    this.changeShow.hidden = !connected;
    this.transistorDisconnect.hidden = !transistor;
    if (!connected) this.chooser.hidden = true;

    const youtube = this.of("YOUTUBE");
    this.youtubeState.textContent = !youtube
      ? "Not connected."
      : youtube.status === "CONNECTED"
        ? `Connected to the channel ${youtube.accountName ?? "(unnamed)"}.`
        : youtube.status === "BROKEN"
          ? `The connection is broken: ${youtube.brokenReason ?? "Google refused it"}. Connect again.`
          : "Waiting for Google's consent.";
    if (youtube?.status !== "PENDING") this.youtubeConsent.hidden = true;
    this.youtubeConnect.textContent = youtube ? "Connect YouTube again" : "Connect YouTube";
    this.youtubeCheck.hidden = youtube?.status !== "PENDING";
    this.youtubeDisconnect.hidden = !youtube;
  }

  private async connectTransistor(): Promise<void> {
    const api = this.api();
    if (!api) return;
    const apiKey = this.transistorKey.value.trim();
    this.transistorError.textContent = "";
    this.transistorKeyError.textContent = "";
    this.transistorKey.removeAttribute("aria-invalid");
    if (!apiKey) return this.keyProblem("Paste your Transistor API key.");
    this.transistorConnect.disabled = true;
    const connect = async (showId: string | null) =>
      (
        await api.request<{ connectTransistor: ConnectionResult }>(
          `mutation ConnectTransistor($input: ConnectTransistorInput!) {
             connectTransistor(input: $input) {
               __typename
               ... on ConnectionPayload {
                 connection { ...DashboardConnection } transistorShows { id title } }
               ... on ValidationError { problems { field message } }
               ... on Error { message } } }
           ${CONNECTION_FIELDS}`,
          { input: { apiKey, showId } },
        )
      ).connectTransistor;
    try {
      // Reconnecting (a broken connection, a new key) keeps the show chosen before, if the
      // account still has it.
      const previous = this.of("TRANSISTOR")?.transistorShow?.id ?? null;
      let result = await connect(previous);
      if (previous && result.problems?.some((problem) => problem.field === "showId")) {
        result = await connect(null);
      }
      if (!result.connection) {
        const keyProblem = result.problems?.find((problem) => problem.field === "apiKey");
        if (keyProblem) return this.keyProblem(sentence("Transistor API key", keyProblem.message));
        this.transistorError.textContent = result.message ?? "Podflow did not connect Transistor.";
        return;
      }
      this.transistorForm.reset();
      this.replace(result.connection);
      if (!result.connection.transistorShow) await this.offerShows(result.transistorShows ?? null);
      else this.transistorState.focus();
    } catch (error) {
      this.transistorError.textContent = (error as Error).message;
    } finally {
      this.transistorConnect.disabled = false;
    }
  }

  private keyProblem(message: string): void {
    this.transistorKeyError.textContent = message;
    this.transistorKey.setAttribute("aria-invalid", "true");
    this.transistorKey.focus();
  }

  /** Shows the chooser with the account's shows: those given, else asked of Transistor now. */
  private async offerShows(given: TransistorShow[] | null): Promise<void> {
    const api = this.api();
    if (!api) return;
    this.transistorError.textContent = "";
    let shows = given;
    if (!shows) {
      this.changeShow.disabled = true;
      try {
        shows = (
          await api.request<{ transistorShows: TransistorShow[] }>(
            "query DashboardTransistorShows { transistorShows { id title } }",
          )
        ).transistorShows;
      } catch (error) {
        this.transistorError.textContent = (error as Error).message;
        return;
      } finally {
        this.changeShow.disabled = false;
      }
    }
    if (!shows.length) {
      this.transistorError.textContent =
        "Your Transistor account has no shows yet: create one at Transistor, then choose it here.";
      return;
    }
    const chosen = this.of("TRANSISTOR")?.transistorShow?.id;
    this.showSelect.replaceChildren(
      ...shows.map((show) => h("option", { value: show.id }, show.title)),
    );
    if (chosen) this.showSelect.value = chosen;
    this.chooser.hidden = false;
    this.showSelect.focus();
  }

  private async chooseShow(): Promise<void> {
    const api = this.api();
    if (!api || !this.showSelect.value) return;
    this.transistorError.textContent = "";
    this.showSave.disabled = true;
    try {
      const data = await api.request<{ chooseTransistorShow: ConnectionResult }>(
        `mutation ChooseTransistorShow($showId: String!) { chooseTransistorShow(showId: $showId) {
           __typename
           ... on ConnectionPayload { connection { ...DashboardConnection } }
           ... on ValidationError { problems { field message } }
           ... on Error { message } } }
         ${CONNECTION_FIELDS}`,
        { showId: this.showSelect.value },
      );
      const result = data.chooseTransistorShow;
      if (!result.connection) {
        const problems = result.problems?.map((p) => sentence("The show", p.message)).join(" ");
        this.transistorError.textContent =
          problems || result.message || "Podflow did not change the show.";
        return;
      }
      this.chooser.hidden = true;
      this.replace(result.connection);
      this.transistorState.focus();
    } catch (error) {
      this.transistorError.textContent = (error as Error).message;
    } finally {
      this.showSave.disabled = false;
    }
  }

  private async connectYouTube(): Promise<void> {
    const api = this.api();
    if (!api) return;
    this.youtubeError.textContent = "";
    // Opened now, in the click, so no popup blocker stops it; sent to Google once the URL is known.
    const tab = window.open("", "_blank");
    this.youtubeConnect.disabled = true;
    try {
      const data = await api.request<{
        connectYouTube: Refusal & { consentUrl?: string; connection?: PublishingConnection };
      }>(
        `mutation ConnectYouTube { connectYouTube {
           __typename
           ... on YouTubeConsent { consentUrl connection { ...DashboardConnection } }
           ... on Error { message } } }
         ${CONNECTION_FIELDS}`,
      );
      const result = data.connectYouTube;
      if (!result.consentUrl || !result.connection) {
        tab?.close();
        this.youtubeError.textContent = result.message ?? "Podflow could not start connecting.";
        return;
      }
      this.youtubeConsentLink.href = result.consentUrl;
      this.youtubeConsent.hidden = false;
      if (tab) {
        tab.opener = null;
        tab.location.href = result.consentUrl;
      }
      this.replace(result.connection);
      // A working connection stays CONNECTED until the new consent completes: say it is asked.
      this.youtubeConsent.hidden = false;
      this.youtubeCheck.hidden = false;
    } catch (error) {
      tab?.close();
      this.youtubeError.textContent = (error as Error).message;
    } finally {
      this.youtubeConnect.disabled = false;
    }
  }

  private async disconnect(service: PublishingService): Promise<void> {
    const api = this.api();
    if (!api) return;
    const error = service === "TRANSISTOR" ? this.transistorError : this.youtubeError;
    const button = service === "TRANSISTOR" ? this.transistorDisconnect : this.youtubeDisconnect;
    error.textContent = "";
    button.disabled = true;
    try {
      const data = await api.request<{ disconnectService: Refusal }>(
        `mutation Disconnect($service: PublishingService!) { disconnectService(service: $service) {
           __typename ... on Error { message } } }`,
        { service },
      );
      const result = data.disconnectService;
      if (result.__typename !== "DisconnectPayload" && result.message) {
        error.textContent = result.message;
      }
      await this.load();
      (service === "TRANSISTOR" ? this.transistorState : this.youtubeState).focus();
    } catch (failure) {
      error.textContent = (failure as Error).message;
    } finally {
      button.disabled = false;
    }
  }

  private replace(connection: PublishingConnection): void {
    this.set([
      ...this.connections.filter((other) => other.service !== connection.service),
      connection,
    ]);
  }
}

/** "is too short…" → "Transistor API key is too short…."; a whole sentence stays as it is. */
function sentence(subject: string, message: string): string {
  const text = /^[a-z]/.test(message) ? `${subject} ${message}` : message;
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
