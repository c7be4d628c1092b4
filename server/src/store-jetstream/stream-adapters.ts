import { createReadStream } from "node:fs";
import type { AdapterHandle, PutAdapterInput, StoredAdapter } from "../core/store.ts";
import { StoreCorruptError, StoreIntegrityError } from "../core/store-errors.ts";
import { type AdapterStore, checkedAdapter } from "../store/adapter-store.ts";
import type { KeyedMutex } from "../store/keyed-mutex.ts";
import { checkSha256 } from "../store/paths.ts";
import { openByteReader, type ReaderRegistry } from "../store/update-reader.ts";
import { adapterObjects, roundObject } from "./names.ts";
import { type ObjectCache, readObject } from "./object-cache.ts";
import type { JetStreamHandles } from "./setup.ts";
import { retryTransient } from "./transient.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The adapter half of the JetStream store. */
export function createStreamAdapters(
  h: JetStreamHandles,
  bucket: string,
  cache: ObjectCache,
  locked: KeyedMutex,
  readers: ReaderRegistry,
): AdapterStore {
  const cachePath = (hash: string) => ["adapters", `${hash}.safetensors`];

  const get = async (contentHash: string): Promise<AdapterHandle | undefined> => {
    checkSha256("content hash", contentHash);
    const names = adapterObjects(contentHash);
    const info = await retryTransient(() => h.objects.info(names.safetensors));
    if (info === null || info.deleted) return undefined;
    const config = await readObject(h, bucket, names.config);
    if (config === null) throw new StoreCorruptError(`object ${names.config} is missing`, names.config);
    const path = await cache.fetch(names.safetensors, cachePath(contentHash), {
      size: info.size,
      sha256: contentHash,
    });
    return {
      contentHash,
      size: info.size,
      configJson: decoder.decode(config),
      open: () => openByteReader(path, readers),
      stream: (range) => createReadStream(path, { start: range?.start, end: range?.end }),
    };
  };

  const roundRecord = async (federationId: string, round: number): Promise<StoredAdapter | undefined> => {
    const name = roundObject(federationId, round);
    const bytes = await readObject(h, bucket, name);
    if (bytes === null) return undefined;
    try {
      const rec = JSON.parse(decoder.decode(bytes)) as StoredAdapter;
      checkSha256("content hash", rec.contentHash);
      return rec;
    } catch (err) {
      throw new StoreCorruptError(`object ${name}: not a round adapter record`, name, undefined, {
        cause: err,
      });
    }
  };

  /** Stores an adapter's two objects under its content hash unless there (the config first), and keeps it in the cache. */
  const putObjects = async (contentHash: string, configJson: string, safetensors: Uint8Array) => {
    const names = adapterObjects(contentHash);
    await locked(`adapter:${contentHash}`, async () => {
      const existing = await readObject(h, bucket, names.config);
      if (existing !== null && decoder.decode(existing) !== configJson) {
        throw new StoreIntegrityError(
          "adapter-conflict",
          {},
          `adapter ${contentHash} is already stored with a different adapter_config.json`,
        );
      }
      // The config first: an adapter is there once its model object is.
      if (existing === null)
        await retryTransient(() => h.objects.putBlob({ name: names.config }, encoder.encode(configJson)));
      const model = await retryTransient(() => h.objects.info(names.safetensors));
      if (model === null || model.deleted)
        await retryTransient(() => h.objects.putBlob({ name: names.safetensors }, safetensors));
    });
    await cache.keep(cachePath(contentHash), safetensors);
  };

  return {
    get,
    async put({ federationId, round, configJson, safetensors, rank }: PutAdapterInput) {
      const stored = checkedAdapter({ federationId, round, configJson, safetensors });
      const { contentHash } = stored;
      if (rank !== undefined) {
        await putObjects(contentHash, configJson, safetensors);
        return stored;
      }
      return locked(`round:${federationId}/${round}`, async () => {
        const before = await roundRecord(federationId, round);
        if (before !== undefined && before.contentHash !== contentHash) {
          throw new StoreIntegrityError(
            "round-result-conflict",
            { federationId, round },
            `already has merged adapter ${before.contentHash}; refusing ${contentHash}`,
          );
        }
        await putObjects(contentHash, configJson, safetensors);
        if (before === undefined) {
          await retryTransient(() =>
            h.objects.putBlob(
              { name: roundObject(federationId, round) },
              encoder.encode(JSON.stringify(stored)),
            ),
          );
        }
        return stored;
      });
    },
    async forRound(federationId, round) {
      const rec = await roundRecord(federationId, round);
      if (rec === undefined) return undefined;
      const handle = await get(rec.contentHash);
      if (handle === undefined) {
        const name = roundObject(federationId, round);
        throw new StoreCorruptError(
          `object ${name}: names adapter ${rec.contentHash}, which is not stored`,
          name,
        );
      }
      return handle;
    },
  };
}
