import type { Logger } from "pino";
import type { Config } from "../../config.ts";
import type { SecretBox } from "../secret-box.ts";
import { createGoogleOAuth, type GoogleOAuth } from "./google-oauth.ts";
import { createTransistorClient, type TransistorClient } from "./transistor-client.ts";
import { createYouTubeClient, type YouTubeClient } from "./youtube-client.ts";

/** The path of Podflow's OAuth callback; its full URL is the redirect URI registered at Google. */
export const YOUTUBE_CALLBACK_PATH = "/oauth/youtube/callback";

/** Publishing to Transistor.fm and YouTube: the services' clients and the key to secrets. */
export interface Distribution {
  transistor: TransistorClient;
  youtube: YouTubeClient;
  /** Null while GOOGLE_OAUTH_CLIENT_ID is unset: YouTube cannot be connected. */
  oauth: GoogleOAuth | null;
  /** Null in production without PODFLOW_SECRET_KEY: no service can be connected. */
  secrets: SecretBox | null;
  /** Where Google sends the producer back after consent. */
  redirectUri: string;
  /** Bytes per YouTube upload request (a multiple of 256 KiB). */
  chunkBytes: number;
  /** How long to wait between looks at Transistor's audio processing. */
  transistorPollMs: number;
}

export function createDistribution(
  config: Config,
  logger: Logger,
  secrets: SecretBox | null,
  options: { transistorPollMs?: number } = {},
): Distribution {
  const d = config.distribution;
  return {
    transistor: createTransistorClient({ apiUrl: d.transistorApiUrl, logger }),
    youtube: createYouTubeClient({
      apiUrl: d.youtubeApiUrl,
      uploadUrl: d.youtubeUploadUrl,
      logger,
    }),
    oauth:
      d.googleClientId && d.googleClientSecret
        ? createGoogleOAuth({
            authorizeUrl: d.googleAuthorizeUrl,
            tokenUrl: d.googleTokenUrl,
            clientId: d.googleClientId,
            clientSecret: d.googleClientSecret,
          })
        : null,
    secrets,
    redirectUri: `${config.publicUrl}${YOUTUBE_CALLBACK_PATH}`,
    chunkBytes: d.youtubeChunkBytes,
    transistorPollMs: options.transistorPollMs ?? 5_000,
  };
}
