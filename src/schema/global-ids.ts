import { decodeGlobalID } from "@pothos/plugin-relay";
import { isUuid } from "../domain/ids.ts";

/**
 * The uuid inside a global id of `typename`, or null for anything else: another type, a
 * malformed id, or one whose inside is no uuid (which finds nothing rather than failing in the
 * database).
 */
export function uuidFromGlobalId(globalId: string, typename: string): string | null {
  try {
    const decoded = decodeGlobalID(globalId);
    return decoded.typename === typename && isUuid(decoded.id) ? decoded.id : null;
  } catch {
    return null;
  }
}
