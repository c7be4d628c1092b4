/** The default content-check thread: the checks with this folder's float64 products (`content-check-pool.ts`). */
import { serveContentChecks } from "./content-check-thread.ts";

serveContentChecks();
