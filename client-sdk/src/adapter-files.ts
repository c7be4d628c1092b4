/**
 * PEFT adapter directories (`adapter_config.json` + `adapter_model.safetensors`,
 * as `model.save_pretrained()` writes them) and the integrity check every
 * downloaded adapter goes through.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ADAPTER_FILES, sha256Hex } from "@tributary/protocol";
import { IntegrityError } from "./errors.ts";

/** File names of a PEFT adapter directory (the protocol's {@link ADAPTER_FILES}). */
export const PEFT_FILES = ADAPTER_FILES;

/** An adapter in memory: the `adapter_config.json` text and the safetensors bytes. */
export interface AdapterFiles {
  readonly configJson: string;
  readonly safetensors: Uint8Array;
}

export { sha256Hex };

/**
 * Reads a PEFT adapter directory.
 *
 * @example
 * const adapter = await readAdapter("./outputs/adapter");
 */
export async function readAdapter(dir: string): Promise<AdapterFiles> {
  const [configJson, safetensors] = await Promise.all([
    readFile(join(dir, PEFT_FILES.config), "utf8"),
    readFile(join(dir, PEFT_FILES.safetensors)),
  ]);
  return {
    configJson,
    safetensors: new Uint8Array(safetensors.buffer, safetensors.byteOffset, safetensors.length),
  };
}

async function writeAtomically(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(tmp, "w", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
}

/**
 * Writes `adapter` as a PEFT directory (created if missing) that
 * `PeftModel.from_pretrained(model, dir)` loads. Each file is written to a
 * temporary name, fsynced and renamed, so a reader never sees a partial file;
 * the safetensors file is replaced first, the config last.
 *
 * @example
 * const global = await client.globalAdapter();
 * await writeAdapter("./global", global);
 */
export async function writeAdapter(dir: string, adapter: AdapterFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeAtomically(join(dir, PEFT_FILES.safetensors), adapter.safetensors);
  await writeAtomically(join(dir, PEFT_FILES.config), adapter.configJson);
}

/**
 * Checks that `safetensors` hashes to `contentHash` (hex sha256).
 *
 * @throws {IntegrityError} naming both hashes otherwise.
 * @example
 * verifyAdapter(adapter.safetensors, header.contentHash, "round 3 over gRPC");
 */
export function verifyAdapter(safetensors: Uint8Array, contentHash: string, what: string): void {
  const actual = sha256Hex(safetensors);
  if (actual !== contentHash.toLowerCase()) {
    throw new IntegrityError(
      `${what}: the adapter's ${safetensors.byteLength} bytes have sha256 ${actual}, expected ${contentHash}`,
      contentHash,
      actual,
    );
  }
}

/**
 * The rank an adapter trains at, from its `adapter_config.json`: its `r`, or
 * the largest of `r` and its `rank_pattern` values; `undefined` when the
 * config does not say.
 *
 * @example
 * adapterRank('{"r": 8, "rank_pattern": {"q_proj": 16}}'); // 16
 */
export function adapterRank(configJson: string): number | undefined {
  let config: unknown;
  try {
    config = JSON.parse(configJson);
  } catch {
    return undefined;
  }
  if (typeof config !== "object" || config === null) return undefined;
  const { r, rank_pattern: pattern } = config as { r?: unknown; rank_pattern?: unknown };
  const ranks = [
    r,
    ...(typeof pattern === "object" && pattern !== null ? Object.values(pattern) : []),
  ].filter((x): x is number => Number.isSafeInteger(x) && (x as number) > 0);
  return ranks.length > 0 ? Math.max(...ranks) : undefined;
}
