/** Typed errors of the merge engine; the CLI and the RPC edge map them to exit codes / status codes. */

/** Invalid merge options (unknown method, out-of-range parameter). */
export class MergeOptionsError extends Error {
  override readonly name = "MergeOptionsError";
}

/** Inputs that cannot be merged together (shapes, ranks, module sets disagree). */
export class MergeInputError extends Error {
  override readonly name = "MergeInputError";
  constructor(
    message: string,
    /** Module or tensor the problem is in. */
    readonly module?: string,
    /** Index of the offending client, when one is to blame. */
    readonly client?: number,
  ) {
    super(message);
  }
}
