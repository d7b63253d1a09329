import { randomBytes, randomUUID } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { v5 as uuidv5 } from "uuid";
import { z } from "zod";
import { appleCategoryProblem } from "../domain/apple-categories.ts";
import { Show } from "../entities/show.entity.ts";
import type { User } from "../entities/user.entity.ts";
import { checkCoverImage, type ImageFetcher } from "./cover-image.ts";
import { NotFoundError, ValidationError, validateInput } from "./errors.ts";

/** Where a show's feed is served: `/feeds/<slug or token>.xml`. */
export const FEED_PATH_PREFIX = "/feeds/";

/** The Podcasting 2.0 namespace for `podcast:guid` (UUIDv5 of the feed URL). */
export const PODCAST_GUID_NAMESPACE = "ead4c236-bf58-58c6-a2c6-a6b28d128cb6";

export function feedUrl(publicUrl: string, show: Pick<Show, "feedKey">): string {
  return `${publicUrl}${FEED_PATH_PREFIX}${show.feedKey}.xml`;
}

/** `podcast:guid`: UUIDv5 of the feed URL without its scheme and trailing slashes. */
export function podcastGuidFor(url: string): string {
  return uuidv5(
    url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/\/+$/, ""),
    PODCAST_GUID_NAMESPACE,
  );
}

export interface ShowFields {
  title: string;
  description: string;
  author: string;
  ownerName?: string | null;
  ownerEmail: string;
  language: string;
  category: string;
  subcategory?: string | null;
  explicit?: boolean | null;
  imageUrl?: string | null;
  link?: string | null;
  locked?: boolean | null;
  newFeedUrl?: string | null;
}

export interface CreateShowInput extends ShowFields {
  isPrivate?: boolean | null;
}

export type UpdateShowInput = Partial<ShowFields>;

const languageNames = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });

/** ISO 639 (two or three letters), optionally with a region, as Apple accepts: `en`, `en-us`. */
function languageProblem(code: string): string | null {
  if (!/^[a-z]{2,3}(-[a-z]{2})?$/i.test(code)) {
    return "must be an ISO 639 language code such as en or en-us";
  }
  return languageNames.of(code.split("-")[0] as string)
    ? null
    : `"${code}" is not a known ISO 639 language`;
}

const httpUrl = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .refine((value) => {
      try {
        const url = new URL(value);
        return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
      } catch {
        return false;
      }
    }, "must be an http(s) URL");

// Apple: values ≤255 characters, description ≤4000 bytes.
const text = (max: number) =>
  z.string().trim().min(1, "must not be empty").max(max, `must be at most ${max} characters`);

const fieldSchemas = {
  title: text(255),
  description: text(4000).refine(
    (value) => Buffer.byteLength(value) <= 4000,
    "must be at most 4000 bytes (Apple's limit)",
  ),
  author: text(255),
  ownerName: text(255).nullish(),
  ownerEmail: z.string().trim().max(320, "is too long").pipe(z.email("must be an e-mail address")),
  language: z
    .string()
    .trim()
    .superRefine((value, ctx) => {
      const problem = languageProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .transform((value) => value.toLowerCase()),
  category: z.string().trim(),
  subcategory: z
    .string()
    .trim()
    .nullish()
    .transform((value) => value || null),
  explicit: z.boolean().nullish(),
  imageUrl: httpUrl(2000).nullish(),
  link: httpUrl(2000)
    .nullish()
    .or(z.literal("").transform(() => null)),
  locked: z.boolean().nullish(),
  newFeedUrl: httpUrl(2000).nullish(),
};

const createSchema = z.object({ ...fieldSchemas, isPrivate: z.boolean().nullish() });
const updateSchema = z.object(fieldSchemas).partial();

function assertCategory(category: string, subcategory: string | null): void {
  const problem = appleCategoryProblem(category, subcategory);
  if (problem) {
    const field = appleCategoryProblem(category, null) ? "category" : "subcategory";
    throw new ValidationError([{ field, message: problem }]);
  }
}

async function assertCover(fetcher: ImageFetcher, url: string): Promise<void> {
  const problem = await checkCoverImage(fetcher, url);
  if (problem) throw new ValidationError([{ field: "imageUrl", message: problem }]);
}

/** A URL-safe slug from a title: `My Show!` → `my-show`. */
export function slugify(title: string): string {
  const slug = title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48)
    .replace(/-+$/, "");
  return slug || "show";
}

export interface ShowDeps {
  em: EntityManager;
  publicUrl: string;
  images: ImageFetcher;
}

/**
 * Creates a show. Its feed URL is fixed now: a slug from the title for a public show, an
 * unguessable token for a private one (which the feed also asks directories not to list).
 */
export async function createShow(
  deps: ShowDeps,
  user: User,
  input: CreateShowInput,
): Promise<Show> {
  const valid = validateInput(createSchema, input);
  assertCategory(valid.category, valid.subcategory);
  if (valid.imageUrl) await assertCover(deps.images, valid.imageUrl);
  const isPrivate = valid.isPrivate ?? false;
  const feedKey = isPrivate
    ? randomBytes(16).toString("base64url")
    : await freeSlug(deps.em, slugify(valid.title));
  const show = deps.em.create(Show, {
    id: randomUUID(),
    user,
    title: valid.title,
    description: valid.description,
    author: valid.author,
    ownerName: valid.ownerName ?? valid.author,
    ownerEmail: valid.ownerEmail,
    language: valid.language,
    category: valid.category,
    subcategory: valid.subcategory,
    explicit: valid.explicit ?? false,
    imageUrl: valid.imageUrl ?? null,
    link: valid.link ?? null,
    locked: valid.locked ?? true,
    newFeedUrl: valid.newFeedUrl ?? null,
    feedKey,
    isPrivate,
    podcastGuid: podcastGuidFor(feedUrl(deps.publicUrl, { feedKey })),
  });
  await deps.em.flush();
  return show;
}

/**
 * The slug, or the slug with a short random suffix when another show has it. (Two shows made
 * at the same instant with the same title may still collide: the unique key refuses the second.)
 */
async function freeSlug(em: EntityManager, slug: string): Promise<string> {
  if ((await em.count(Show, { feedKey: slug })) === 0) return slug;
  return `${slug}-${randomBytes(3).toString("hex")}`;
}

/** Changes the fields given; the feed URL and `podcast:guid` never change. */
export async function updateShow(
  deps: ShowDeps,
  user: User,
  showId: string,
  input: UpdateShowInput,
): Promise<Show> {
  const valid = validateInput(updateSchema, input);
  const show = await findShow(deps.em, user, showId);
  if (!show) throw new NotFoundError("No such show");
  if (valid.category !== undefined || valid.subcategory !== undefined) {
    const category = valid.category ?? show.category;
    const subcategory =
      valid.subcategory !== undefined
        ? valid.subcategory
        : valid.category !== undefined && valid.category !== show.category
          ? null
          : (show.subcategory ?? null);
    assertCategory(category, subcategory);
    show.category = category;
    show.subcategory = subcategory;
  }
  if (valid.imageUrl != null && valid.imageUrl !== show.imageUrl) {
    await assertCover(deps.images, valid.imageUrl);
    show.imageUrl = valid.imageUrl;
  }
  if (valid.title !== undefined) show.title = valid.title;
  if (valid.description !== undefined) show.description = valid.description;
  if (valid.author !== undefined) show.author = valid.author;
  if (valid.ownerName !== undefined) show.ownerName = valid.ownerName ?? show.author;
  if (valid.ownerEmail !== undefined) show.ownerEmail = valid.ownerEmail;
  if (valid.language !== undefined) show.language = valid.language;
  if (valid.explicit != null) show.explicit = valid.explicit;
  if (valid.link !== undefined) show.link = valid.link ?? null;
  if (valid.locked != null) show.locked = valid.locked;
  if (valid.newFeedUrl !== undefined) show.newFeedUrl = valid.newFeedUrl ?? null;
  await deps.em.flush();
  return show;
}

/** The user's show with this id, or null — also for a malformed id or another's show. */
export async function findShow(
  em: EntityManager,
  user: User,
  showId: string,
): Promise<Show | null> {
  if (!z.uuid().safeParse(showId).success) return null;
  return em.findOne(Show, { id: showId, user: user.id });
}

/** The user's shows among these ids; `fresh` reads them anew even if this `em` has them. */
export async function findShows(
  em: EntityManager,
  user: User,
  showIds: readonly string[],
  options: { fresh?: boolean } = {},
): Promise<Show[]> {
  const valid = showIds.filter((id) => z.uuid().safeParse(id).success);
  if (valid.length === 0) return [];
  return em.find(Show, { id: { $in: valid }, user: user.id }, { refresh: options.fresh ?? false });
}

export interface ShowCursor {
  createdAt: Date;
  id: string;
}

/** Up to `limit` of the user's shows, newest first, after a position (keyset, like episodes). */
export function listShows(
  em: EntityManager,
  user: User,
  options: { limit: number; after?: ShowCursor | null },
): Promise<Show[]> {
  const { limit, after } = options;
  return em.find(
    Show,
    {
      user: user.id,
      ...(after
        ? {
            $or: [
              { createdAt: { $lt: after.createdAt } },
              { createdAt: after.createdAt, id: { $lt: after.id } },
            ],
          }
        : {}),
    },
    { orderBy: [{ createdAt: "desc" }, { id: "desc" }], limit },
  );
}
