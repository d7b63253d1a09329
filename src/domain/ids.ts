/** A uuid in its text form, either case: every id Podflow makes (episodes, shows, tasks). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether `id` can be one of our ids: checked before it reaches PostgreSQL, so that a made-up id
 * finds nothing rather than failing a uuid cast (a regular expression: a zod schema per id was a
 * measurable part of a page).
 */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}
