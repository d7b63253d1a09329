import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

/** Only one non-negative integer is a valid Content-Length (a list of them is smuggling). */
const CONTENT_LENGTH = /^\d+$/;

function tooLarge(): GraphQLError {
  return new GraphQLError("Request body too large", {
    extensions: { http: { status: 413 }, code: "REQUEST_ENTITY_TOO_LARGE" },
  });
}

/**
 * The GraphQL request body limit (PODFLOW_GRAPHQL_MAX_BODY_BYTES), answered 413 as yoga's own
 * `maxRequestBodySize` answers, which this replaces: yoga also pipes every body through a
 * counting stream and builds a second Request around it, a large share of a small request's
 * cost. A body with a Content-Length is judged by the header alone — Node's HTTP parser reads
 * exactly that many bytes, no more, and refuses Content-Length beside chunked encoding — so only
 * a body without one (chunked) is counted as it arrives.
 */
export function useRequestBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get("content-length");
      if (length != null) {
        if (!CONTENT_LENGTH.test(length)) {
          throw new GraphQLError("Content-Length header is invalid.", {
            extensions: { http: { status: 400 }, code: "BAD_REQUEST" },
          });
        }
        if (Number(length) > maxBytes) throw tooLarge();
        return;
      }
      const body = request.body;
      if (!requestParser || !body) return;
      setRequestParser((original) => {
        let read = 0;
        // A native stream needs the native TransformStream (yoga's note: whatwg-node's ponyfill
        // does not pipe into it), the ponyfill the ponyfill.
        const Transform =
          body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
        const counted = body.pipeThrough(
          new Transform({
            transform(chunk: Uint8Array, controller) {
              read += chunk.byteLength;
              if (read > maxBytes) controller.error(tooLarge());
              else controller.enqueue(chunk);
            },
          }),
        );
        return requestParser(
          new fetchAPI.Request(original.url, {
            method: original.method,
            headers: original.headers,
            signal: original.signal,
            body: counted,
            duplex: "half",
          } as RequestInit),
        );
      });
    },
  };
}
