/**
 * The dashboard in a real browser — Debian's Chromium driven by playwright-core, never a
 * downloaded browser — against a real Podflow with the local engine: sign in, upload a generated
 * recording through the page, watch the upload bar and each task move live until PROCESSED, play
 * the audio, see a failure and retry it, and see changes made by a second Podflow on the same
 * database, and after a dropped live connection, reach the page without a reload; connect
 * Transistor (a stand-in) and YouTube (a stand-in of Google's consent) through the page, publish
 * to Transistor and retry a failed publication.
 *
 * With PODFLOW_DASHBOARD_SCREENSHOT=<file.png> it also saves a screenshot of the dashboard with the
 * processed episode published (docs/dashboard.png in the README comes from here).
 *
 * Over 300 lines because the tests are one producer's session in order (one browser, one
 * Podflow, one processed episode that later tests play, fail, retry and page past).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningPodflow } from "../../src/app.ts";
import { findUserByEmail, issueToken, revokeToken } from "../../src/services/accounts.ts";
import { changeEpisode, changeTask, insertProcessingEpisode } from "../support/episode-changes.ts";
import { graphql } from "../support/http.ts";
import {
  makeMediaDir,
  makeQuietAudio,
  makeVideoWithAudio,
  testMediaTools,
} from "../support/media.ts";
import { startTestPodflow } from "../support/podflow.ts";
import { type Scenario, startScenario, type TestProducer } from "../support/scenario.ts";
import { startTransistorStandIn, type TransistorStandIn } from "../support/transistor-stand-in.ts";
import { startYouTubeStandIn, type YouTubeStandIn } from "../support/youtube-stand-in.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `Dashboard browser tests skipped: ${CHROMIUM} is missing. Install Debian's Chromium ` +
      "(apt-get update && apt-get install -y chromium), as .ci/run does.",
  );
}

const ROOT = path.resolve(import.meta.dirname, "../..");
const tools = testMediaTools();
const TRANSISTOR_KEY = "tr_live_dashboard_0123456789";
const GOOGLE_CLIENT = { id: "podflow-dashboard.apps.googleusercontent.com", secret: "GOCSPX-dash" };

/** What the page showed over time, recorded in the page by a MutationObserver. */
interface Seen {
  /** aria-valuenow of the upload bar, in order. */
  upload: number[];
  /** The text beside the upload bar (bytes, percent, speed), in order. */
  uploadText: string[];
  /** Per episode id and task type: "STATUS:progress" in order. */
  tasks: Record<string, string[]>;
  /** Per episode id: the status label, in order. */
  statuses: Record<string, string[]>;
  /** Per episode id and destination: "STATUS:upload percent" in order. */
  publications: Record<string, string[]>;
}

// Generous waits: the suite runs these beside ffmpeg-heavy test files on two shared cores.
describe.skipIf(!hasChromium)("the dashboard", { timeout: 120_000 }, () => {
  let scenario: Scenario;
  let producer: TestProducer;
  let browser: Browser;
  let page: Page;
  let media: Awaited<ReturnType<typeof makeMediaDir>>;
  let video: string;
  let episodeId = "";
  const others: RunningPodflow[] = [];
  let transistor: TransistorStandIn;
  let youtube: YouTubeStandIn;

  beforeAll(async () => {
    media = await makeMediaDir();
    [video] = await Promise.all([
      makeVideoWithAudio(tools, media.dir, 4),
      // The page as `npm start` builds it, from the sources under test.
      build({ configFile: path.join(ROOT, "web/vite.config.ts"), logLevel: "warn" }),
    ]);
    transistor = await startTransistorStandIn({ apiKey: TRANSISTOR_KEY, userName: "Pat Producer" });
    transistor.addShow({ title: "Tech Talk" });
    transistor.addShow({ title: "Side Project" });
    youtube = await startYouTubeStandIn({
      clientId: GOOGLE_CLIENT.id,
      clientSecret: GOOGLE_CLIENT.secret,
    });
    scenario = await startScenario({
      env: {
        PODFLOW_MEDIA_ENGINE: "local",
        PODFLOW_SECRET_KEY: Buffer.alloc(32, 9).toString("base64"),
        TRANSISTOR_API_URL: transistor.url,
        GOOGLE_OAUTH_CLIENT_ID: GOOGLE_CLIENT.id,
        GOOGLE_OAUTH_CLIENT_SECRET: GOOGLE_CLIENT.secret,
        GOOGLE_OAUTH_AUTHORIZE_URL: youtube.authorizeUrl,
        GOOGLE_OAUTH_TOKEN_URL: youtube.tokenUrl,
        YOUTUBE_API_URL: youtube.apiUrl,
        YOUTUBE_UPLOAD_URL: youtube.uploadUrl,
      },
      start: {
        // A revoked token's subscriptions end at the next sweep: every second here, not every 30 s.
        subscriptions: { tokenRecheckMs: 1_000 },
        distribution: { transistorPollMs: 50 },
      },
    });
    producer = await scenario.producer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(60_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const other of others) await other.stop();
    await scenario?.stop();
    await transistor?.close();
    await youtube?.close();
    await media?.cleanup();
  });

  const card = (id: string) => page.locator(`li.episode[data-episode-id="${id}"]`);
  const seen = () => page.evaluate(() => (window as unknown as { seen: Seen }).seen);

  it("refuses a wrong token with a clear message and signs in with the right one", async () => {
    await page.goto(scenario.url);
    await page.getByLabel("API token").fill("pf_not_a_real_token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText(/That API token was not accepted/).waitFor();
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);

    // By keyboard: Enter in the field signs in.
    await page.getByLabel("API token").fill(producer.token);
    await page.getByLabel("API token").press("Enter");
    await page.getByText(producer.email).waitFor();
    await page.getByText("No episodes yet").waitFor();
    // The token is kept for this browser session only.
    expect(await page.evaluate(() => Object.values(sessionStorage))).toContain(producer.token);
    expect(await page.evaluate(() => Object.values(localStorage))).not.toContain(producer.token);

    // A reload in the same session stays signed in; Sign out forgets the token.
    await page.reload();
    await page.getByText(producer.email).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").waitFor();
    expect(await page.evaluate(() => Object.values(sessionStorage))).not.toContain(producer.token);
    await page.getByLabel("API token").fill(producer.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText(producer.email).waitFor();
  });

  it("uploads a recording through the page and shows each task move live to PROCESSED", {
    timeout: 240_000,
  }, async () => {
    await recordWhatThePageShows(page);
    // A slow uplink, so the upload takes long enough for the bar to move visibly.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 128 * 1024,
    });
    await page.getByLabel("Episode file").setInputFiles(video);
    const uploadForm = page.locator("#upload-form");
    await uploadForm.getByLabel("Title").fill("Browser Episode");
    await uploadForm.getByLabel("Description").fill("Uploaded through the dashboard.");
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByText(/processing has started/).waitFor({ timeout: 60_000 });
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });

    const upload = (await seen()).upload;
    expect(upload.at(-1)).toBe(100);
    expect(upload.some((value) => value > 0 && value < 100)).toBe(true);
    expect(upload).toEqual([...upload].sort((a, b) => a - b));
    // The speed was shown beside the bar while the bytes went.
    expect((await seen()).uploadText.some((text) => /\d B\/s|KB\/s|MB\/s/.test(text))).toBe(true);

    const episode = page.locator("li.episode", { hasText: "Browser Episode" });
    episodeId = (await episode.getAttribute("data-episode-id")) ?? "";
    expect(episodeId).not.toBe("");
    // ffmpeg encodes 1080p on two shared cores: generous, since tests run side by side.
    await card(episodeId).and(page.locator('[data-status="PROCESSED"]')).waitFor({
      timeout: 200_000,
    });

    const { tasks, statuses } = await seen();
    expect(statuses[episodeId]).toEqual(expect.arrayContaining(["Processing", "Processed"]));
    expect(statuses[episodeId]?.at(-1)).toBe("Processed");
    for (const type of ["AUDIO_EXTRACTION", "VIDEO_TRANSCODE", "CHAPTER_DETECTION"]) {
      const states = tasks[`${episodeId}:${type}`] ?? [];
      // Each task was seen working before it was seen done, with its bar only moving forward.
      expect(states.some((state) => state.startsWith("PROCESSING:"))).toBe(true);
      expect(states.at(-1)).toBe("COMPLETED:100");
      const values = states.map((state) => Number(state.split(":")[1]));
      expect(values).toEqual([...values].sort((a, b) => a - b));
    }
    // No speech model in this Podflow: the transcript is skipped, with the reason shown.
    expect(tasks[`${episodeId}:TRANSCRIPT_GENERATION`]?.at(-1)).toBe("SKIPPED:100");
    await card(episodeId)
      .getByText(/PODFLOW_WHISPER_MODEL/)
      .waitFor();
    // All of it arrived live: the page was never reloaded.
    expect(await page.evaluate(() => "seen" in window)).toBe(true);

    await card(episodeId).getByRole("link", { name: "Audio (MP3)" }).waitFor();
    await card(episodeId)
      .getByRole("button", { name: /Play from 0:00: Chapter 1/ })
      .waitFor();
  });

  it("plays the processed episode's audio", async () => {
    const audio = card(episodeId).locator("audio");
    expect(await audio.getAttribute("src")).toMatch(new RegExp(`^${scenario.url}/media/`));
    await audio.evaluate((element: HTMLAudioElement) => element.play());
    await page.waitForFunction(
      (element) => element instanceof HTMLAudioElement && element.currentTime > 0.2,
      await audio.elementHandle(),
      { timeout: 15_000 },
    );
    expect(await audio.evaluate((element: HTMLAudioElement) => element.readyState)).toBeGreaterThan(
      1,
    );
    // A chapter's timestamp seeks the player to the chapter's start.
    await audio.evaluate((element: HTMLAudioElement) => {
      element.pause();
      element.currentTime = 3;
      element.addEventListener("seeked", () => {
        (window as unknown as { seekedTo: number }).seekedTo = element.currentTime;
      });
    });
    await page.waitForFunction(
      () => (window as unknown as { seekedTo?: number }).seekedTo !== undefined,
    );
    await page.evaluate(() => {
      delete (window as unknown as { seekedTo?: number }).seekedTo;
    });
    await card(episodeId)
      .getByRole("button", { name: /Play from 0:00: Chapter 1/ })
      .click();
    await page.waitForFunction(
      () => (window as unknown as { seekedTo?: number }).seekedTo !== undefined,
    );
    expect(
      await page.evaluate(() => (window as unknown as { seekedTo: number }).seekedTo),
    ).toBeLessThan(0.5);
    await audio.evaluate((element: HTMLAudioElement) => element.pause());
  });

  it("shows a failure with its reason and retries it from the page", {
    timeout: 200_000,
  }, async () => {
    const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;
    const [chapterTask] = await scenario
      .em()
      .execute<{ id: string }[]>(
        "select id from processing_tasks where episode_id = ? and type = 'CHAPTER_DETECTION'",
        [uuid],
      );
    // The chapter task (quick to run again) fails the way the engine reports a failure; the
    // database announces both changes.
    const fixture = { id: uuid, userId: producer.userId };
    const deps = scenario.podflow.deps;
    await changeTask(deps, fixture, chapterTask?.id as string, {
      status: "FAILED",
      errorMessage: "ffmpeg exited with code 1",
    });
    await changeEpisode(deps, fixture, {
      status: "FAILED",
      failureReason: "CHAPTER_DETECTION failed: ffmpeg exited with code 1",
    });
    const failed = card(episodeId);
    await failed.getByText("Processing failed: CHAPTER_DETECTION failed").waitFor();
    await failed.and(page.locator('[data-status="FAILED"]')).waitFor();
    await failed.getByText("ffmpeg exited with code 1", { exact: true }).waitFor();
    // A failed episode offers no player until it is processed again.
    expect(await failed.locator("audio").count()).toBe(0);

    await failed.getByRole("button", { name: "Retry" }).click();
    await failed.and(page.locator('[data-status="PROCESSING"]')).waitFor();
    await failed
      .and(page.locator('[data-status="PROCESSED"]'))
      .waitFor({ timeout: 180_000 })
      .catch(async (error: Error) => {
        const state = await producer.gql(
          `query($id: ID!) { episode(id: $id) { status failureReason tasks { type status attempt progress error } } }`,
          { id: episodeId },
        );
        const shown = await failed.evaluate((element) => element.textContent);
        throw new Error(`${error.message}\nAPI: ${JSON.stringify(state.body)}\nPage: ${shown}`);
      });
    expect(await failed.getByRole("button", { name: "Retry" }).isVisible()).toBe(false);
    const states = (await seen()).tasks[`${episodeId}:CHAPTER_DETECTION`] ?? [];
    const failedAt = states.findLastIndex((state) => state.startsWith("FAILED:"));
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(states.slice(failedAt)).toContain("COMPLETED:100");
  });

  it("shows the transcript with timestamps; a click plays from there", async () => {
    // No speech model can run here (the test model recognises nothing), so the transcript is
    // stored as the speech task stores a real one; the database announces the change.
    const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;
    const segments = [
      { start: 0, end: 1.8, text: "Welcome to the show.", speaker: null },
      { start: 2.5, end: 4, text: "Today: automating a podcast.", speaker: null },
    ];
    const [speechTask] = await scenario
      .em()
      .execute<{ id: string }[]>(
        "select id from processing_tasks where episode_id = ? and type = 'TRANSCRIPT_GENERATION'",
        [uuid],
      );
    await changeTask(
      scenario.podflow.deps,
      { id: uuid, userId: producer.userId },
      speechTask?.id as string,
      { status: "COMPLETED", progress: 100, errorMessage: null },
    );
    await scenario
      .em()
      .execute(
        "update episodes set transcript = ?, transcript_segments = ?, updated_at = clock_timestamp() where id = ?",
        [segments.map((segment) => segment.text).join(" "), JSON.stringify(segments), uuid],
      );
    const transcript = card(episodeId).locator("details.transcript");
    // Loaded when opened: the list never carries transcripts.
    await transcript.locator("summary").click();
    await transcript.getByText("Today: automating a podcast.").waitFor();
    await card(episodeId).getByRole("link", { name: "Transcript (text)" }).waitFor();

    const audio = card(episodeId).locator("audio");
    await audio.evaluate((element: HTMLAudioElement) => {
      element.pause();
      delete (window as unknown as { seekedTo?: number }).seekedTo;
      element.addEventListener("seeked", () => {
        (window as unknown as { seekedTo: number }).seekedTo = element.currentTime;
      });
    });
    await transcript.getByRole("button", { name: "Play from 0:02" }).click();
    await page.waitForFunction(
      () => (window as unknown as { seekedTo?: number }).seekedTo !== undefined,
    );
    const seekedTo = await page.evaluate(
      () => (window as unknown as { seekedTo: number }).seekedTo,
    );
    expect(seekedTo).toBeGreaterThanOrEqual(2.4);
    expect(seekedTo).toBeLessThan(3);
    await audio.evaluate((element: HTMLAudioElement) => element.pause());
  });

  it("creates a show, moves the episode into it, publishes it to the feed, takes it out, uploads into it", async () => {
    const shows = page.locator("#shows-panel");
    const form = page.locator("#show-form");
    await form.getByLabel("Show title").fill("Dashboard Show");
    await form.getByLabel("Show description").fill("Made in the browser.");
    await form.getByLabel("Author").fill("Browser Author");
    await form.getByLabel("Owner e-mail").fill("not-an-address");
    await form.getByLabel("Language").fill("en");
    await form.getByLabel("Category").selectOption("Technology");
    await form.getByRole("button", { name: "Create show" }).click();
    // The API's refusal is shown under the field it names, which takes the focus.
    await form
      .locator("#show-ownerEmail-error")
      .getByText(/Owner e-mail .+/)
      .waitFor();
    expect(await form.getByLabel("Owner e-mail").getAttribute("aria-invalid")).toBe("true");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("show-owner-email");
    expect(await shows.locator("li[data-show-id]").count()).toBe(0);

    await form.getByLabel("Owner e-mail").fill("owner@example.com");
    await form.getByRole("button", { name: "Create show" }).click();
    const item = shows.locator("li[data-show-id]", { hasText: "Dashboard Show" });
    await item.waitFor();
    expect(await form.locator(".field-error:not(:empty)").count()).toBe(0);
    const feedUrl = (await item.locator(".feed-url").textContent()) ?? "";
    expect(feedUrl).toMatch(/^https?:\/\//);
    // Copy feed URL: the page's clipboard gets it (granted here), else the URL is selected.
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], {
      origin: scenario.url,
    });
    await item.getByRole("button", { name: "Copy feed URL of Dashboard Show" }).click();
    await shows.getByText("The feed URL of “Dashboard Show” is copied.").waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(feedUrl);

    // Editing keeps the feed URL.
    await item.getByRole("button", { name: "Edit Dashboard Show" }).click();
    expect(await form.getByLabel("Show title").inputValue()).toBe("Dashboard Show");
    await form.getByLabel("Author").fill("Edited Author");
    await form.getByRole("button", { name: "Save show" }).click();
    await shows.getByText("“Dashboard Show” is saved.").waitFor();
    const showId = (await item.getAttribute("data-show-id")) ?? "";
    const saved = await producer.gql<{ show: { author: string; feedUrl: string } }>(
      "query($id: ID!) { show(id: $id) { author feedUrl } }",
      { id: showId },
    );
    expect(saved.body.data?.show).toEqual({ author: "Edited Author", feedUrl });
    // The upload form offers the show.
    expect(await page.locator("#upload-show option", { hasText: "Dashboard Show" }).count()).toBe(
      1,
    );

    const episode = card(episodeId);
    await episode.getByLabel("Show", { exact: true }).selectOption({ label: "Dashboard Show" });
    await episode.getByText("Not published in “Dashboard Show”.").waitFor();
    const feed = async () => {
      const response = await fetch(feedUrl);
      expect(response.status).toBe(200);
      return response.text();
    };
    const title = (await episode.locator("h3").textContent()) ?? "";

    // Scheduled for later: not in the feed yet.
    const later = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 16);
    await episode.getByLabel("Publish at").fill(later);
    await episode.getByRole("button", { name: "Publish", exact: true }).click();
    await episode.getByText(/^Scheduled for .+ in “Dashboard Show”\.$/).waitFor();
    expect(await feed()).not.toContain(`<title>${title}</title>`);

    // Published now (the time cleared): in the feed.
    await episode.getByLabel("Publish at").fill("");
    await episode.getByRole("button", { name: "Publish again", exact: true }).click();
    await episode.getByText(/^Published in “Dashboard Show” on /).waitFor();
    expect(await feed()).toContain(`<title>${title}</title>`);

    await episode.getByRole("button", { name: "Unpublish", exact: true }).click();
    await episode.getByText("Not published in “Dashboard Show”.").waitFor();
    expect(await feed()).not.toContain(`<title>${title}</title>`);
    expect(await episode.getByRole("button", { name: "Unpublish" }).isVisible()).toBe(false);

    // An upload with a Show chosen goes into that show (a second of audio: quick to process).
    const uploadForm = page.locator("#upload-form");
    await uploadForm
      .getByLabel("Episode file")
      .setInputFiles(await makeQuietAudio(tools, media.dir, 1));
    await uploadForm.getByLabel("Title").fill("Uploaded into the show");
    await uploadForm.getByLabel("Show").selectOption({ label: "Dashboard Show" });
    await uploadForm.getByRole("button", { name: "Upload" }).click();
    await page.getByText(/“Uploaded into the show” is uploaded/).waitFor();
    const uploadedId =
      (await page
        .locator("li.episode", { hasText: "Uploaded into the show" })
        .getAttribute("data-episode-id")) ?? "";
    const uploaded = await producer.gql<{ episode: { show: { id: string } | null } }>(
      "query($id: ID!) { episode(id: $id) { show { id } } }",
      { id: uploadedId },
    );
    expect(uploaded.body.data?.episode.show?.id).toBe(showId);
  });

  it("connects Transistor through the page, publishes to it and retries a failed publication", {
    timeout: 200_000,
  }, async () => {
    const connections = page.locator("#connections-panel");
    const episode = card(episodeId);
    const toTransistor = episode.getByRole("checkbox", { name: /^Transistor/ });
    await connections.getByText("Not connected.").first().waitFor();
    // Nothing to publish with yet: the card says so beside the choice.
    expect(await toTransistor.isDisabled()).toBe(true);
    await episode.getByText("(connect Transistor first)").waitFor();

    // A wrong key: Transistor's refusal, in the API's words, under the field.
    await connections.getByLabel("Transistor API key").fill("tr_wrong_key_000000");
    await connections.getByRole("button", { name: "Connect Transistor", exact: true }).click();
    await connections
      .locator("#transistor-key-error")
      .getByText("Transistor refused this API key (Account → API Access).")
      .waitFor();
    expect(await connections.getByLabel("Transistor API key").getAttribute("aria-invalid")).toBe(
      "true",
    );

    // The right one: two shows at Transistor, so the page asks which.
    await connections.getByLabel("Transistor API key").fill(TRANSISTOR_KEY);
    await connections.getByRole("button", { name: "Connect Transistor", exact: true }).click();
    await connections.getByLabel("Transistor show to publish to").selectOption({
      label: "Side Project",
    });
    await connections.getByRole("button", { name: "Use this show" }).click();
    await connections
      .getByText("Connected as Pat Producer; episodes go to “Side Project”.")
      .waitFor();
    expect(await connections.getByLabel("Transistor API key").isVisible()).toBe(false);
    const row = await scenario
      .em()
      .execute<{ secret: string }[]>(
        "select secret from publishing_connections where user_id = ? and service = 'transistor'",
        [producer.userId],
      );
    expect(row[0]?.secret).not.toContain(TRANSISTOR_KEY);
    expect(await page.content()).not.toContain(TRANSISTOR_KEY);

    // One Publish sends both destinations; the publications move live to PUBLISHED.
    await toTransistor.check();
    expect(await episode.getByRole("checkbox", { name: /^The show's feed/ }).isChecked()).toBe(
      true,
    );
    expect(await episode.getByRole("checkbox", { name: /^YouTube/ }).isDisabled()).toBe(true);
    await episode.getByLabel("Publish at").fill("");
    await episode.getByRole("button", { name: /^Publish( again)?$/ }).click();
    const publications = episode.getByRole("list", { name: "Publications" });
    const onTransistor = publications.locator('li[data-destination="TRANSISTOR"]');
    await onTransistor.and(page.locator('[data-status="PUBLISHED"]')).waitFor({ timeout: 90_000 });
    await publications
      .locator('li[data-destination="FEED"][data-status="PUBLISHED"]')
      .getByText("Published")
      .waitFor();
    // One episode at Transistor, in the show chosen on the page.
    const sideProject = [...transistor.shows.values()].find(
      (show) => show.attributes.title === "Side Project",
    );
    expect(transistor.episodes.size).toBe(1);
    const remote = [...transistor.episodes.values()][0];
    expect(remote?.showId).toBe(sideProject?.id);
    expect(remote?.created.title).toBe((await episode.locator("h3").textContent()) ?? "");
    const link = onTransistor.getByRole("link", { name: "Open on Transistor" });
    expect(await link.getAttribute("href")).toBe(remote?.attributes.share_url);
    expect(await onTransistor.getByRole("progressbar").isVisible()).toBe(false);
    const shown = (await seen()).publications[`${episodeId}:TRANSISTOR`] ?? [];
    expect(shown.at(-1)).toMatch(/^PUBLISHED:/);
    expect(new Set(shown.map((state) => state.split(":")[0])).size).toBeGreaterThan(1);
    // Upload progress, whenever it was seen, only moved forward.
    const percents = shown
      .filter((state) => state.startsWith("UPLOADING:"))
      .map((state) => Number(state.split(":")[1]));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));

    // What a job records while it works reaches the card live: the bar and the bytes while the
    // media uploads, and a wait with its reason and end. (Set here as the job records them: the
    // stand-in takes a small MP3 too fast to watch.)
    const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;
    const setPublication = (set: string, values: unknown[] = []) =>
      scenario
        .em()
        .execute(
          `update publications set ${set}, updated_at = clock_timestamp() where episode_id = ? and destination = 'TRANSISTOR'`,
          [...values, uuid],
        );
    await setPublication("status = 'UPLOADING', bytes_sent = 4000, bytes_total = 10000");
    const bar = onTransistor.getByRole("progressbar", { name: "Upload to Transistor" });
    await bar.and(page.locator('[aria-valuenow="40"]')).waitFor();
    await onTransistor.getByText("4.0 KB of 10.0 KB (40%)").waitFor();
    expect(await link.isVisible()).toBe(false);
    const until = new Date(Date.now() + 3_600_000);
    await setPublication("status = 'QUEUED', waiting_reason = ?, waiting_until = ?", [
      "Transistor answered 503: trying again",
      until,
    ]);
    await onTransistor.getByText("Transistor answered 503: trying again Until").waitFor();
    await onTransistor.locator(".publication-status").getByText("Waiting").waitFor();
    expect(await bar.isVisible()).toBe(false);
    await setPublication(
      "status = 'PUBLISHED', bytes_sent = 10000, waiting_reason = null, waiting_until = null",
    );
    await link.waitFor();
    expect(await onTransistor.locator(".publication-reason").isVisible()).toBe(false);

    const screenshot = process.env.PODFLOW_DASHBOARD_SCREENSHOT;
    if (screenshot) await page.screenshot({ path: path.resolve(ROOT, screenshot), fullPage: true });

    // Transistor refuses the next episode: FAILED with its reason, and Retry brings it out.
    const other = page.locator("li.episode", { hasText: "Uploaded into the show" });
    await other.and(page.locator('[data-status="PROCESSED"]')).waitFor({ timeout: 120_000 });
    const before = transistor.episodes.size;
    transistor.failNext({
      method: "POST",
      path: "/v1/episodes",
      status: 422,
      body: { errors: [{ title: "Unprocessable Entity", detail: "Audio file is not valid" }] },
    });
    await other.getByRole("checkbox", { name: /^The show's feed/ }).uncheck();
    await other.getByRole("checkbox", { name: /^Transistor/ }).check();
    await other.getByRole("button", { name: /^Publish( again)?$/ }).click();
    const failed = other.locator('.publications > li[data-destination="TRANSISTOR"]');
    await failed.and(page.locator('[data-status="FAILED"]')).waitFor({ timeout: 90_000 });
    await failed.getByText(/Transistor refused the episode: .*Audio file is not valid/).waitFor();
    // Only Transistor was asked for: the feed has no publication.
    expect(await other.locator('.publications > li[data-destination="FEED"]').count()).toBe(0);
    expect(transistor.episodes.size).toBe(before);
    await failed.getByRole("button", { name: "Retry publishing to Transistor" }).click();
    await failed.and(page.locator('[data-status="PUBLISHED"]')).waitFor({ timeout: 90_000 });
    await failed.getByRole("link", { name: "Open on Transistor" }).waitFor();
    expect(await failed.getByRole("button", { name: /Retry/ }).isVisible()).toBe(false);
    expect(await failed.locator(".failure-reason").count()).toBe(0);
    expect(transistor.episodes.size).toBe(before + 1);

    // Transistor refuses the stored key: the publication fails saying so, and the Connections
    // panel shows the connection broken without being asked; pasting the key again keeps the
    // show, and Retry publishes the same remote episode.
    transistor.failNext({
      method: "PATCH",
      path: /^\/v1\/episodes\/[^/]+\/publish$/,
      status: 401,
      body: { errors: [{ title: "Unauthorized", detail: "Invalid API key" }] },
    });
    await other.getByRole("button", { name: "Publish again" }).click();
    await failed
      .getByText(/Transistor refused the stored API key .*connect Transistor again/)
      .waitFor();
    await connections
      .getByText(/^The connection is broken: Transistor refused the stored API key/)
      .waitFor();
    expect(await other.getByRole("checkbox", { name: /^Transistor/ }).isDisabled()).toBe(true);
    await connections.getByLabel("Transistor API key").fill(TRANSISTOR_KEY);
    await connections.getByRole("button", { name: "Connect Transistor", exact: true }).click();
    await connections
      .getByText("Connected as Pat Producer; episodes go to “Side Project”.")
      .waitFor();
    expect(await connections.getByLabel("Transistor show to publish to").isVisible()).toBe(false);
    await failed.getByRole("button", { name: "Retry publishing to Transistor" }).click();
    await failed.and(page.locator('[data-status="PUBLISHED"]')).waitFor({ timeout: 90_000 });
    expect(transistor.episodes.size).toBe(before + 1);
  });

  it("connects YouTube through Google's consent in a new tab, and disconnects", async () => {
    const connections = page.locator("#connections-panel");
    const consentTab = page.context().waitForEvent("page");
    await connections.getByRole("button", { name: "Connect YouTube", exact: true }).click();
    const tab = await consentTab;
    try {
      // Google (the stand-in) approves and sends the tab back to Podflow's callback.
      await tab.getByText("YouTube is connected: Stand-in Channel.").waitFor();
      expect(new URL(tab.url()).pathname).toBe("/oauth/youtube/callback");
    } finally {
      await tab.close();
    }
    // Back on the dashboard, the window gets the focus again: the page asks anew.
    await page.bringToFront();
    await page.evaluate(() => window.dispatchEvent(new Event("focus")));
    await connections.getByText("Connected to the channel Stand-in Channel.").waitFor();
    const toYouTube = card(episodeId).getByRole("checkbox", { name: /^YouTube/ });
    expect(await toYouTube.isDisabled()).toBe(false);
    // Privacy is asked only when YouTube is chosen.
    expect(await card(episodeId).getByLabel("YouTube privacy").isVisible()).toBe(false);
    await toYouTube.check();
    expect(await card(episodeId).getByLabel("YouTube privacy").isVisible()).toBe(true);
    await toYouTube.uncheck();

    // Google revoked the grant (as a publishing job finds out): the page shows why once it is
    // looked at again, and YouTube is no longer offered.
    await scenario
      .em()
      .execute(
        "update publishing_connections set status = 'BROKEN', broken_reason = ? where user_id = ? and service = 'youtube'",
        ["Google refused the stored grant (invalid_grant): connect YouTube again", producer.userId],
      );
    await page.evaluate(() => window.dispatchEvent(new Event("focus")));
    await connections
      .getByText(
        "The connection is broken: Google refused the stored grant (invalid_grant): connect YouTube again. Connect again.",
      )
      .waitFor();
    expect(await toYouTube.isDisabled()).toBe(true);
    await card(episodeId)
      .getByText(/\(the connection is broken: connect YouTube again\)/)
      .waitFor();
    await connections.getByRole("button", { name: "Connect YouTube again" }).waitFor();

    await connections.getByRole("button", { name: "Disconnect YouTube" }).click();
    await connections.locator("#youtube-state").getByText("Not connected.").waitFor();
    expect(await toYouTube.isDisabled()).toBe(true);
    const listed = await producer.gql<{ publishingConnections: { service: string }[] }>(
      "{ publishingConnections { service } }",
    );
    expect(listed.body.data?.publishingConnections.map((c) => c.service)).toEqual(["TRANSISTOR"]);
  });

  it("links the processed episode's exports, and each link answers", async () => {
    const exports = card(episodeId).locator("ul.exports");
    for (const [name, type] of [
      ["Captions (VTT)", /text\/vtt/],
      ["Captions (SRT)", /subrip/],
      ["Transcript (JSON)", /json/],
      ["Chapters (JSON)", /json/],
      ["Transcript as plain text", /text\/plain/],
    ] as const) {
      const href =
        (await exports.getByRole("link", { name, exact: true }).getAttribute("href")) ?? "";
      const response = await fetch(new URL(href, scenario.url));
      expect(response.status, name).toBe(200);
      expect(response.headers.get("content-type"), name).toMatch(type);
    }
    const vtt = await exports.getByRole("link", { name: "Captions (VTT)" }).getAttribute("href");
    expect(await (await fetch(new URL(vtt ?? "", scenario.url))).text()).toContain(
      "Today: automating a podcast.",
    );
  });

  it("fits a phone's width without sideways scrolling", async () => {
    await page.setViewportSize({ width: 360, height: 800 });
    try {
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow).toBe(0);
      expect(await page.getByRole("button", { name: "Upload" }).isVisible()).toBe(true);
    } finally {
      await page.setViewportSize({ width: 1100, height: 900 });
    }
  });

  it("shows what a second Podflow on the same database changes", { timeout: 200_000 }, async () => {
    const second = await startTestPodflow({
      databaseUrl: scenario.databaseUrl,
      env: { PODFLOW_MEDIA_ENGINE: "local", PODFLOW_ROLES: "api" },
    });
    others.push(second);
    const answer = await graphql<{ prepareUpload: { episode: { id: string } } }>(
      second.url ?? "",
      `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
         ... on PrepareUploadPayload { episode { id } } } }`,
      { input: { title: "From the other instance", filename: "other.mp3", filesize: 1000 } },
      { authorization: `Bearer ${producer.token}` },
    );
    const otherId = answer.body.data?.prepareUpload.episode.id as string;
    await card(otherId).getByText("From the other instance").waitFor();
    await card(otherId).getByText("Awaiting upload").waitFor();
    // Newest first: the new episode is above the processed one.
    const order = await page
      .locator("li.episode")
      .evaluateAll((items) => items.map((item) => item.getAttribute("data-episode-id")));
    expect(order.indexOf(otherId)).toBeLessThan(order.indexOf(episodeId));

    // The other way round: a page served by the second Podflow (API only, no workers) follows
    // an episode that the first one's engine processes.
    const onSecond = await browser.newPage();
    onSecond.setDefaultTimeout(60_000);
    try {
      await signInOn(onSecond, second.url ?? "", producer.token);
      const bytes = await readFile(video);
      const prepared = await producer.gql<{
        prepareUpload: { episode: { id: string }; upload: { url: string } };
      }>(
        `mutation($input: PrepareUploadInput!) { prepareUpload(input: $input) {
           ... on PrepareUploadPayload { episode { id } upload { url } } } }`,
        {
          input: {
            title: "Processed elsewhere",
            filename: "elsewhere.mp4",
            filesize: bytes.length,
          },
        },
      );
      const { episode, upload } = prepared.body.data?.prepareUpload ?? {};
      const put = await fetch(upload?.url ?? "", { method: "PUT", body: bytes });
      const { id: fileId } = (await put.json()) as { id: string };
      const confirmed = await producer.gql<{ confirmUpload: { __typename: string } }>(
        `mutation($input: ConfirmUploadInput!) { confirmUpload(input: $input) { __typename } }`,
        { input: { episodeId: episode?.id, fileId } },
      );
      expect(confirmed.body.data?.confirmUpload.__typename).toBe("ConfirmUploadPayload");
      const elsewhere = onSecond.locator(`li.episode[data-episode-id="${episode?.id}"]`);
      await elsewhere.and(onSecond.locator('[data-status="PROCESSED"]')).waitFor({
        timeout: 150_000,
      });
      expect(await elsewhere.locator("audio").count()).toBe(1);
    } finally {
      await onSecond.close();
    }
  });

  it("says when the live connection drops and catches up when it is back", {
    timeout: 90_000,
  }, async () => {
    // A second page, on a Podflow that goes away and comes back on the same address.
    const env = { PODFLOW_MEDIA_ENGINE: "local", PODFLOW_ROLES: "api" };
    const first = await startTestPodflow({ databaseUrl: scenario.databaseUrl, env });
    const address = new URL(first.url ?? "");
    const other = await browser.newPage();
    other.setDefaultTimeout(60_000);
    try {
      await signInOn(other, first.url ?? "", producer.token);
      await other.locator(`li.episode[data-episode-id="${episodeId}"]`).waitFor();
      await other.evaluate(() => {
        (window as unknown as { notReloaded: boolean }).notReloaded = true;
      });

      await first.stop();
      await other.getByText(/Live updates are disconnected/).waitFor();
      // A change while the page cannot hear about it.
      const uuid = Buffer.from(episodeId, "base64").toString().split(":")[1] as string;
      await changeEpisode(
        scenario.podflow.deps,
        { id: uuid, userId: producer.userId },
        {
          title: "Renamed while offline",
        },
      );
      const back = await startTestPodflow({
        databaseUrl: scenario.databaseUrl,
        env: { ...env, PORT: address.port },
      });
      others.push(back);
      await other.getByText("Renamed while offline").waitFor({ timeout: 30_000 });
      expect(await other.getByText(/Live updates are disconnected/).isVisible()).toBe(false);
      expect(
        await other.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
      ).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("pages back through older episodes with Load more", async () => {
    const before = await page.locator("li.episode").count();
    for (let n = 1; n <= 20; n++) {
      await insertProcessingEpisode(scenario.podflow.deps, producer.userId, `Older ${n}`);
    }
    await page.reload();
    await page.getByText(producer.email).waitFor();
    await page.getByRole("button", { name: "Load more" }).waitFor();
    // The first page is 20, newest first: the episodes just made.
    expect(await page.locator("li.episode").count()).toBe(20);
    expect(await page.locator("li.episode h3").first().textContent()).toBe("Older 20");
    await page.getByRole("button", { name: "Load more" }).click();
    await page.locator(`li.episode[data-episode-id="${episodeId}"]`).waitFor();
    expect(await page.locator("li.episode").count()).toBe(before + 20);
    expect(await page.getByRole("button", { name: "Load more" }).isVisible()).toBe(false);
  });

  it("goes back to sign-in, saying why, when the token is revoked", async () => {
    const user = await findUserByEmail(scenario.em(), producer.email);
    const { token, secret } = await issueToken(scenario.em(), user, "revoked in the browser");
    const tab = await browser.newPage();
    tab.setDefaultTimeout(60_000);
    try {
      await signInOn(tab, scenario.url, secret);
      await tab.locator("li.episode").first().waitFor();
      await revokeToken(scenario.em(), token.id);
      await tab.getByText("Your API token is no longer accepted. Sign in again.").waitFor();
      await tab.getByLabel("API token").waitFor();
      expect(await tab.locator("li.episode").count()).toBe(0);
      expect(await tab.evaluate(() => Object.values(sessionStorage))).not.toContain(secret);
    } finally {
      await tab.close();
    }
  });
});

async function signInOn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** Installs a MutationObserver that records every value the page's bars and statuses take. */
async function recordWhatThePageShows(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: Seen = { upload: [], uploadText: [], tasks: {}, statuses: {}, publications: {} };
    const push = (list: string[] | number[], value: string | number) => {
      if (list.at(-1) !== value) (list as (string | number)[]).push(value);
    };
    const record = () => {
      const upload = document.getElementById("upload-bar");
      if (upload && !upload.closest("[hidden]")) {
        push(seen.upload, Number(upload.getAttribute("aria-valuenow")));
        push(seen.uploadText, document.getElementById("upload-status")?.textContent ?? "");
      }
      for (const item of document.querySelectorAll<HTMLElement>("li.episode")) {
        const id = item.dataset.episodeId ?? "";
        seen.statuses[id] ??= [];
        push(seen.statuses[id], item.querySelector(".status")?.textContent ?? "");
        for (const task of item.querySelectorAll<HTMLElement>("li.task")) {
          const bar = task.querySelector<HTMLElement>("[role=progressbar]");
          const key = `${id}:${task.dataset.task}`;
          seen.tasks[key] ??= [];
          push(seen.tasks[key], `${bar?.dataset.status}:${bar?.getAttribute("aria-valuenow")}`);
        }
        for (const row of item.querySelectorAll<HTMLElement>(".publications > li")) {
          const bar = row.querySelector<HTMLElement>("[role=progressbar]");
          const key = `${id}:${row.dataset.destination}`;
          seen.publications[key] ??= [];
          push(
            seen.publications[key],
            `${row.dataset.status}:${bar?.getAttribute("aria-valuenow")}`,
          );
        }
      }
    };
    new MutationObserver(record).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true,
    });
    (window as unknown as { seen: Seen }).seen = seen;
  });
}
