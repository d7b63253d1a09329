import { GraphQLError, Kind, visit } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * PostgreSQL stores no NUL character in text or jsonb: an input holding one would fail in the
 * database as an internal error. It is refused before execution instead — in the variables or in
 * the document's own string literals, over HTTP, SSE and WebSocket alike.
 */
export function useNoNulText(): Plugin {
  const refuse = (setResult: (result: { errors: GraphQLError[] }) => void) =>
    setResult({
      errors: [
        new GraphQLError("Text may not contain NUL characters (\\u0000)", {
          extensions: { code: "BAD_USER_INPUT" },
        }),
      ],
    });
  const check = ({
    args,
    setResultAndStopExecution,
  }: {
    args: { document: import("graphql").DocumentNode; variableValues?: unknown };
    setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
  }) => {
    if (containsNul(args.variableValues) || documentContainsNul(args.document)) {
      refuse(setResultAndStopExecution);
    }
  };
  return { onExecute: check, onSubscribe: check } as Plugin;
}

/** Documents already looked at (yoga's parser cache hands the same object for the same text). */
const looked = new WeakMap<import("graphql").DocumentNode, boolean>();

function documentContainsNul(document: import("graphql").DocumentNode): boolean {
  const known = looked.get(document);
  if (known !== undefined) return known;
  let found = false;
  visit(document, {
    [Kind.STRING](node) {
      if (node.value.includes("\0")) found = true;
    },
  });
  looked.set(document, found);
  return found;
}

/** Whether a NUL character is in any string of a JSON-like value (keys included). */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return value.includes("\0");
  if (depth > 64 || value === null || typeof value !== "object") return false;
  for (const [key, inner] of Object.entries(value)) {
    if (key.includes("\0") || containsNul(inner, depth + 1)) return true;
  }
  return false;
}
