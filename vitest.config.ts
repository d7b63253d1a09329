import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM ("module") builds. Node loads the CommonJS one for
    // every package; Vite would pick the ESM one for our own files, and two copies of graphql
    // refuse to share a schema. Resolve ours the way Node does.
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    // Each file gets its own database, so files may run in parallel; tests
    // inside one file share it and run in order.
    fileParallelism: true,
    // Three files at once, on any machine: most of a file's time is waiting (PostgreSQL, ffmpeg,
    // timers of heartbeats and retries), not CPU, and Vitest's default (one fewer than the cores)
    // ran one file at a time on a 2-core machine. The whole suite: 568 s → 244 s there.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
