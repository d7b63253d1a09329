import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import got, { RequestError, type Response } from "got";
import { z } from "zod";
import { redact } from "../ittybit/errors.ts";

// Google's OAuth 2.0 authorization-code flow with PKCE, for the YouTube connection: the consent
// URL, the code exchange and access-token refreshes. Nothing here stores anything.

export const DEFAULT_GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth";
export const DEFAULT_GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";

/** Upload videos, add captions (force-ssl) and read the channel (readonly). */
export const YOUTUBE_SCOPES = [
  "https://www.googleapis.com/auth/youtube.upload",
  "https://www.googleapis.com/auth/youtube.force-ssl",
  "https://www.googleapis.com/auth/youtube.readonly",
];

export interface GoogleOAuthOptions {
  authorizeUrl?: string;
  tokenUrl?: string;
  clientId: string;
  clientSecret: string;
  timeoutMs?: number;
  /** Quick retries of 5xx and connection failures on the token endpoint. */
  transientRetries?: number;
}

export interface GoogleTokens {
  accessToken: string;
  expiresAt: Date;
  refreshToken: string | null;
  scopes: string[];
}

export interface GoogleOAuth {
  /** Consent URL with response_type=code, access_type=offline, prompt=consent, scope, state, code_challenge (S256). */
  consentUrl(p: {
    state: string;
    codeChallenge: string;
    redirectUri: string;
    scopes: string[];
  }): string;
  exchangeCode(p: {
    code: string;
    codeVerifier: string;
    redirectUri: string;
  }): Promise<GoogleTokens>;
  /** A new access token; Google keeps the refresh token, so none comes back. */
  refresh(
    refreshToken: string,
  ): Promise<{ accessToken: string; expiresAt: Date; scopes: string[] | null }>;
}

/**
 * A failed token request. `code` is Google's `error` (`invalid_grant`: the code or refresh token
 * is expired, used or revoked — the producer must connect again; `invalid_client`: our client id
 * or secret is wrong), or `network` / `unexpected_response` when Google's answer never came or
 * made no sense.
 */
export class OAuthError extends Error {
  override readonly name = "OAuthError";
  readonly code: string;
  readonly status: number | null;
  readonly retryable: boolean;

  constructor(
    message: string,
    details: { code: string; status: number | null; retryable: boolean },
  ) {
    super(message);
    this.code = details.code;
    this.status = details.status;
    this.retryable = details.retryable;
  }
}

/** A PKCE pair: a 64-character verifier and its S256 challenge (both base64url). */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(48).toString("base64url");
  return { verifier, challenge: pkceChallenge(verifier) };
}

export function pkceChallenge(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

const TokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
  scope: z.string().optional(),
  token_type: z.string().optional(),
});

const TokenErrorSchema = z.looseObject({
  error: z.string().optional().catch(undefined),
  error_description: z.string().optional().catch(undefined),
});

// Access tokens are reported as expiring a minute early, so a call never starts with one about to
// lapse.
const EXPIRY_MARGIN_MS = 60_000;

export function createGoogleOAuth(options: GoogleOAuthOptions): GoogleOAuth {
  const authorizeUrl = options.authorizeUrl ?? DEFAULT_GOOGLE_AUTHORIZE_URL;
  const tokenUrl = options.tokenUrl ?? DEFAULT_GOOGLE_TOKEN_URL;
  const transientRetries = options.transientRetries ?? 2;

  async function token(form: Record<string, string>, secrets: string[]) {
    const allSecrets = [...secrets, options.clientSecret];
    let attempt = 0;
    for (;;) {
      let response: Response<string>;
      try {
        response = await got.post(tokenUrl, {
          form,
          headers: { accept: "application/json" },
          responseType: "text",
          throwHttpErrors: false,
          followRedirect: false,
          retry: { limit: 0 },
          timeout: { request: options.timeoutMs ?? 30_000 },
        });
      } catch (error) {
        if (!(error instanceof RequestError)) throw error;
        if (attempt < transientRetries) {
          attempt += 1;
          await sleep(250 * 2 ** attempt);
          continue;
        }
        throw new OAuthError(
          `Google's token endpoint could not be reached (${error.code ?? "network error"})`,
          { code: "network", status: null, retryable: true },
        );
      }
      const status = response.statusCode;
      if (status >= 500 && attempt < transientRetries) {
        attempt += 1;
        await sleep(250 * 2 ** attempt);
        continue;
      }
      let json: unknown;
      try {
        json = JSON.parse(response.body);
      } catch {
        json = undefined;
      }
      if (status >= 200 && status < 300) {
        const parsed = TokenResponseSchema.safeParse(json);
        if (parsed.success) return parsed.data;
        throw new OAuthError("Google's token endpoint answered without an access token", {
          code: "unexpected_response",
          status,
          retryable: false,
        });
      }
      const body = TokenErrorSchema.safeParse(json);
      const code = body.success && body.data.error ? body.data.error : `http_${status}`;
      const description = body.success ? body.data.error_description : undefined;
      const advice =
        code === "invalid_grant"
          ? " — the authorization is expired or revoked; connect YouTube again"
          : code === "invalid_client"
            ? " — the Google OAuth client id or secret is wrong"
            : "";
      throw new OAuthError(
        redact(
          `Google refused the token request: HTTP ${status} ${code}${description ? ` (${description.slice(0, 300)})` : ""}${advice}`,
          allSecrets,
        ),
        { code, status, retryable: status >= 500 || status === 429 },
      );
    }
  }

  const base = { client_id: options.clientId, client_secret: options.clientSecret };
  const expiry = (expiresIn: number | undefined) =>
    new Date(Date.now() + Math.max(0, (expiresIn ?? 3600) * 1000 - EXPIRY_MARGIN_MS));
  const scopesOf = (scope: string | undefined) => (scope ? scope.split(/\s+/).filter(Boolean) : []);

  return {
    consentUrl({ state, codeChallenge, redirectUri, scopes }) {
      const url = new URL(authorizeUrl);
      const params = {
        client_id: options.clientId,
        redirect_uri: redirectUri,
        response_type: "code",
        scope: scopes.join(" "),
        access_type: "offline",
        prompt: "consent",
        include_granted_scopes: "true",
        state,
        code_challenge: codeChallenge,
        code_challenge_method: "S256",
      };
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return url.toString();
    },

    async exchangeCode({ code, codeVerifier, redirectUri }) {
      const answer = await token(
        {
          ...base,
          grant_type: "authorization_code",
          code,
          code_verifier: codeVerifier,
          redirect_uri: redirectUri,
        },
        [code, codeVerifier],
      );
      return {
        accessToken: answer.access_token,
        expiresAt: expiry(answer.expires_in),
        refreshToken: answer.refresh_token ?? null,
        scopes: scopesOf(answer.scope),
      };
    },

    async refresh(refreshToken) {
      const answer = await token(
        { ...base, grant_type: "refresh_token", refresh_token: refreshToken },
        [refreshToken],
      );
      return {
        accessToken: answer.access_token,
        expiresAt: expiry(answer.expires_in),
        scopes: answer.scope ? scopesOf(answer.scope) : null,
      };
    },
  };
}
