import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.ts";
import {
  type RequestContext,
  requestContext,
  requestIdFrom,
  runInRequest,
} from "../../src/request-context.ts";

function collectingLogger() {
  const lines: Array<{ msg: string; requestId?: string }> = [];
  const logger = createLogger(
    { logLevel: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

describe("request ids", () => {
  it("keeps a sane incoming id and makes a UUID for anything else", () => {
    for (const sane of [
      "abc",
      "req-1.2:3",
      "0a1b2c3d-aaaa-bbbb-cccc-1234567890ab",
      "Root=1-abc/def+g==",
    ]) {
      expect(requestIdFrom(sane)).toBe(sane);
    }
    expect(requestIdFrom(["first", "second"])).toBe("first");
    for (const unsafe of [undefined, "", " x", "a b", "a\nb", "<script>", "-x", "x".repeat(129)]) {
      expect(requestIdFrom(unsafe)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("puts the id on every line within the request, and on none after its response ended", async () => {
    const { logger, lines } = collectingLogger();
    const context: RequestContext = { requestId: "req-1" };
    let later!: Promise<void>;
    requestContext.run(context, () => {
      logger.info("inside");
      later = new Promise<void>((resolve) =>
        setTimeout(() => {
          logger.info("timer set by the request, after it ended");
          resolve();
        }, 5),
      );
      // Shared work started by this request runs outside it.
      runInRequest(undefined, () => logger.info("shared batch"));
      runInRequest({ requestId: "req-2" }, () => logger.info("another request's work"));
    });
    logger.info("outside");
    context.ended = true;
    await later;
    expect(lines.map(({ msg, requestId }) => [msg, requestId])).toEqual([
      ["inside", "req-1"],
      ["shared batch", undefined],
      ["another request's work", "req-2"],
      ["outside", undefined],
      ["timer set by the request, after it ended", undefined],
    ]);
  });
});
