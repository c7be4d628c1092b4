/** Loopback ports for tests that need one fixed before a server starts. */
import { createServer } from "node:net";

/** A port free right now on 127.0.0.1 (nobody listens there until someone binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}
