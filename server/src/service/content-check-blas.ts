/**
 * The coordinator's content-check thread: installs native LAPACK/BLAS float64
 * products in the thread first (as the main thread does), so the norms of
 * intake run on `dgemm` where it is installed.
 */
import { installDecompositions } from "../compute/lapack.ts";
import { serveContentChecks } from "../coordinator/content-check-thread.ts";

serveContentChecks(installDecompositions());
