/**
 * Merged adapters in the file store: immutable, content-addressed
 * directories `adapters/<sha256>/` (built under a temporary name, fsynced and
 * renamed into place as a whole, never rewritten) and one record per round,
 * `rounds/<fed>/<round>.json`, naming the hash. A round's record never changes.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { AdapterHandle, PutAdapterInput, StoredAdapter } from "../core/store.ts";
import { StoreArgumentError, StoreCorruptError, StoreIntegrityError } from "../core/store-errors.ts";
import { CONFIG_FILE, parseSafetensors, WEIGHTS_FILE } from "../peft/index.ts";
import { ensureDir, errnoCode, syncDir, writeFileAtomic } from "./fs-util.ts";
import type { KeyedMutex } from "./keyed-mutex.ts";
import { checkId, checkRound, checkSha256, type StoreLayout, tempName } from "./paths.ts";
import { openByteReader, type ReaderRegistry } from "./update-reader.ts";

/** The JSON of `rounds/<fed>/<round>.json`. */
export interface RoundAdapterRecord {
  readonly federationId: string;
  readonly round: number;
  readonly contentHash: string;
  readonly size: number;
  /** Epoch ms when the record was written. */
  readonly storedAt: number;
}

/**
 * Checks a merged adapter to store (ids, a safetensors that parses, a config
 * that is JSON) and returns its content address; `StoreArgumentError` or the
 * parser's error otherwise.
 */
export function checkedAdapter(input: PutAdapterInput): StoredAdapter {
  const { federationId, round, configJson, safetensors } = input;
  checkId("federation_id", federationId);
  checkRound(round);
  const label = `federation "${federationId}" round ${round} merged adapter`;
  parseSafetensors(safetensors, label);
  try {
    JSON.parse(configJson);
  } catch (err) {
    throw new StoreArgumentError(`${label}: adapter_config.json is not JSON`, { cause: err });
  }
  return { contentHash: createHash("sha256").update(safetensors).digest("hex"), size: safetensors.length };
}

/** The adapter half of the file store. */
export interface AdapterStore {
  put(input: PutAdapterInput): Promise<StoredAdapter>;
  get(contentHash: string): Promise<AdapterHandle | undefined>;
  forRound(federationId: string, round: number): Promise<AdapterHandle | undefined>;
}

async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** The adapter store of a data directory; `locked` serialises writers of the same round. */
export function createAdapterStore(
  layout: StoreLayout,
  locked: KeyedMutex,
  readers: ReaderRegistry,
): AdapterStore {
  const get = async (contentHash: string): Promise<AdapterHandle | undefined> => {
    const dir = layout.adapter(contentHash);
    const configJson = await readTextIfExists(join(dir, CONFIG_FILE));
    if (configJson === undefined) return undefined;
    const weights = join(dir, WEIGHTS_FILE);
    const { size } = await stat(weights);
    return {
      contentHash,
      size,
      configJson,
      open: () => openByteReader(weights, readers),
      stream: (range) => createReadStream(weights, { start: range?.start, end: range?.end }),
    };
  };

  /** Stores the object unless present; throws if present with another config. */
  const putObject = async (hash: string, configJson: string, bytes: Uint8Array): Promise<void> => {
    const existing = await get(hash);
    if (existing !== undefined) {
      if (existing.configJson !== configJson || existing.size !== bytes.length) {
        throw new StoreIntegrityError(
          "adapter-conflict",
          {},
          `adapter ${hash} is already stored with a different adapter_config.json`,
        );
      }
      return;
    }
    const root = await ensureDir(layout.root, ["adapters"]);
    const temp = join(root, tempName(hash));
    await mkdir(temp, { mode: 0o700 });
    try {
      await writeFileAtomic(temp, WEIGHTS_FILE, bytes);
      await writeFileAtomic(temp, CONFIG_FILE, new TextEncoder().encode(configJson));
      await rename(temp, join(root, hash));
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      const code = errnoCode(err);
      // Another writer stored the same hash first: theirs is identical.
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw err;
    }
    await syncDir(root);
  };

  const readRoundRecord = async (
    federationId: string,
    round: number,
  ): Promise<RoundAdapterRecord | undefined> => {
    const { dirs, file } = layout.round(federationId, round);
    const path = join(layout.root, ...dirs, file);
    const text = await readTextIfExists(path);
    if (text === undefined) return undefined;
    try {
      const rec = JSON.parse(text) as RoundAdapterRecord;
      checkSha256("content hash", rec.contentHash);
      return rec;
    } catch (err) {
      throw new StoreCorruptError(`${path}: not a round adapter record`, path, undefined, { cause: err });
    }
  };

  return {
    get,
    async put({ federationId, round, configJson, safetensors, rank }) {
      const stored = checkedAdapter({ federationId, round, configJson, safetensors });
      const { contentHash } = stored;
      if (rank !== undefined) {
        await locked(`adapter:${contentHash}`, () => putObject(contentHash, configJson, safetensors));
        return stored;
      }
      return locked(`round:${federationId}/${round}`, async () => {
        const before = await readRoundRecord(federationId, round);
        if (before !== undefined && before.contentHash !== contentHash) {
          throw new StoreIntegrityError(
            "round-result-conflict",
            { federationId, round },
            `already has merged adapter ${before.contentHash}; refusing ${contentHash}`,
          );
        }
        await locked(`adapter:${contentHash}`, () => putObject(contentHash, configJson, safetensors));
        if (before !== undefined) return stored;
        const record: RoundAdapterRecord = { federationId, round, ...stored, storedAt: Date.now() };
        const { dirs, file } = layout.round(federationId, round);
        const dir = await ensureDir(layout.root, dirs);
        await writeFileAtomic(dir, file, new TextEncoder().encode(`${JSON.stringify(record)}\n`));
        return stored;
      });
    },
    async forRound(federationId, round) {
      const rec = await readRoundRecord(federationId, round);
      if (rec === undefined) return undefined;
      const handle = await get(rec.contentHash);
      if (handle === undefined) {
        const { dirs, file } = layout.round(federationId, round);
        const path = join(layout.root, ...dirs, file);
        throw new StoreCorruptError(`${path}: names adapter ${rec.contentHash}, which is not stored`, path);
      }
      return handle;
    },
  };
}
