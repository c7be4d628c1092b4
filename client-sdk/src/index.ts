/**
 * `@tributary/client-sdk`: take part in a Tributary federation from
 * TypeScript, whatever you train with. `connect()` a client, `join` a
 * federation, then loop `nextRound` → train → `submit` → `waitForResult`, or
 * hand a training function to `runFederated`. The `tributary client` command
 * (`@tributary/client-sdk/cli`) does the same for shell scripts and Python.
 *
 * @example
 * import { connect } from "@tributary/client";
 *
 * const client = connect({ coordinator: "127.0.0.1:7070", token: process.env.TRIBUTARY_TOKEN! });
 * await client.join("support-bot");
 * const round = await client.nextRound();
 * await client.submit(round.number, "./adapter", { samples: 1200 });
 * const merged = await client.waitForResult(round.number);
 * await client.close();
 */
export {
  type AdapterFiles,
  adapterRank,
  PEFT_FILES,
  readAdapter,
  sha256Hex,
  verifyAdapter,
  writeAdapter,
} from "./adapter-files.ts";
export { type AdapterDtype, adapterSchema, type JoinSchema, type ModuleShape } from "./adapter-schema.ts";
export type { TlsOptions } from "./channel.ts";
export {
  type AdapterChoice,
  type ConnectOptions,
  connect,
  type GlobalAdapter,
  type JoinResult,
  type TributaryClient,
  type WaitOptions,
} from "./client.ts";
export {
  ConflictingUpdateError,
  IntegrityError,
  InternalError,
  InvalidUpdateError,
  NotFoundError,
  NotInCohortError,
  PermissionDeniedError,
  PreconditionError,
  QuotaExceededError,
  RoundFailedError,
  StaleRoundError,
  TributaryError,
  UnauthenticatedError,
  UnavailableError,
  UpdateTooLargeError,
} from "./errors.ts";
export { type LocalDpOptions, type LocalDpReport, localEpsilon, privatizeAdapter } from "./local-dp.ts";
export type { RetryInfo, RetryOptions } from "./retry.ts";
export type { RoundInfo, RoundStateName } from "./round-info.ts";
export {
  type RoundOutcome,
  type RunBufferedOptions,
  type RunFederatedOptions,
  runBuffered,
  runFederated,
  type TrainContext,
  type TrainResult,
} from "./run-federated.ts";
export type { SubmitOptions, SubmitResult, UploadProgress } from "./upload.ts";
export { describeWaiting, type Waiting } from "./waiting.ts";
