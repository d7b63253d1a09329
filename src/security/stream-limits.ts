import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * At most `maxPerToken` subscriptions over HTTP (server-sent events) per token on this
 * instance; the next one is answered with an error naming the setting. WebSocket subscriptions
 * are bounded by socket-limits.ts instead (sockets per token × operations per socket). A stream
 * counts from its start until it ends, however it ends (completed, client gone, token revoked).
 */
export function useStreamLimit(maxPerToken: number): Plugin {
  const open = new Map<string, number>();
  const release = (tokenHash: string) => {
    const left = (open.get(tokenHash) ?? 1) - 1;
    if (left > 0) open.set(tokenHash, left);
    else open.delete(tokenHash);
  };
  return {
    onSubscribe({ context, setResultAndStopExecution }) {
      const { tokenHash, socket } = context as { tokenHash?: string | null; socket?: unknown };
      // Over WebSocket, or without a token (refused by the resolvers): not counted here.
      if (socket || !tokenHash) return;
      if ((open.get(tokenHash) ?? 0) >= maxPerToken) {
        setResultAndStopExecution({
          errors: [
            new GraphQLError(
              `At most ${maxPerToken} event streams per token (PODFLOW_SSE_MAX_STREAMS_PER_TOKEN)`,
              {
                extensions: {
                  code: "LIMIT_EXCEEDED",
                  setting: "PODFLOW_SSE_MAX_STREAMS_PER_TOKEN",
                },
              },
            ),
          ],
        });
        return;
      }
      open.set(tokenHash, (open.get(tokenHash) ?? 0) + 1);
      return {
        onSubscribeResult({ result }) {
          // A refusal or an error result is no stream: give the place back now.
          if (!(Symbol.asyncIterator in Object(result))) {
            release(tokenHash);
            return;
          }
          return { onEnd: () => release(tokenHash) };
        },
      };
    },
  };
}
