import net from "node:net";

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now: for the embedded PostgreSQL, and
 * for tests and benchmarks that start servers of their own.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not find a free port"));
      });
    });
  });
}
