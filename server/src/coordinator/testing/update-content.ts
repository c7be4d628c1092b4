/**
 * Test support: an update's bytes checked against its federation's schema in
 * memory, and decoded — the checks intake runs tensor by tensor on stored
 * bytes (`update-stream-validator.ts`), on a whole adapter at once, so tests
 * can hold the schema checks to their messages.
 */
import { AdapterFormatError } from "@tributary/protocol";
import type { Federation } from "../../core/model.ts";
import { decodeAdapter } from "../../peft/adapter-codec.ts";
import type { PeftAdapter } from "../../peft/adapter-types.ts";
import { parseSafetensors } from "../../peft/safetensors.ts";
import { checkTensorsAgainstSchema, parseUpdateConfig, updateLabel } from "../adapter-schema.ts";
import { InvalidUpdateError } from "../errors.ts";

/** What `validateUpdateContent` needs. */
export interface UpdateContent {
  readonly federation: Federation;
  readonly clientId: string;
  /** The header's `adapter_config.json`. */
  readonly configJson: string;
  /** The complete staged safetensors bytes. */
  readonly bytes: Uint8Array;
}

/** Runs `fn`, turning an `AdapterFormatError` into an `InvalidUpdateError` with the same message. */
function asInvalidUpdate<T>(clientId: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AdapterFormatError) {
      throw new InvalidUpdateError(clientId, err.message, {
        ...(err.tensor !== undefined ? { tensor: err.tensor } : {}),
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Checks a staged update's bytes before it is accepted, and returns the
 * decoded adapter. Malformed safetensors and NaN/Inf values become
 * `InvalidUpdateError` naming the tensor (the `AdapterFormatError` message is
 * kept); then the module set, dimensions, rank ≤ `maxRank` and dtypes are
 * checked against the schema. Holds the whole adapter in memory: for large
 * adapters use `validateUpdateStream`.
 *
 * @example
 * const adapter = validateUpdateContent({ federation, clientId, configJson: header.configJson, bytes });
 */
export function validateUpdateContent(req: UpdateContent): PeftAdapter {
  const { federation, clientId, configJson, bytes } = req;
  const label = updateLabel(clientId);
  const config = parseUpdateConfig(federation.schema, clientId, configJson);
  const { tensors } = asInvalidUpdate(clientId, () =>
    parseSafetensors(bytes, `${label}/adapter_model.safetensors`),
  );
  checkTensorsAgainstSchema(federation.schema, clientId, config, tensors);
  return asInvalidUpdate(clientId, () => decodeAdapter(configJson, bytes, label));
}
