/** Typed errors of the PEFT adapter reader and writer; the RPC edge maps them to `INVALID_ARGUMENT`. */

/**
 * A malformed or unsupported adapter file. The message is self-contained: it
 * names the file, the tensor when there is one, and what was expected.
 *
 * @example
 * throw new AdapterFormatError(
 *   `${file}: tensor "x.lora_A.weight" has 12 bytes, expected 16 for F32 [2, 2]`,
 *   file,
 *   "x.lora_A.weight",
 * );
 */
export class AdapterFormatError extends Error {
  override readonly name = "AdapterFormatError";
  constructor(
    message: string,
    /** Path (or label-qualified name) of the offending file. */
    readonly file: string,
    /** Tensor the problem is in, when one is to blame. */
    readonly tensor?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
