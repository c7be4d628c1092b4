/**
 * PEFT adapter directories on disk: thin wrappers around `decodeAdapter` and
 * `encodeAdapter`. Writes are crash-safe per file: each file goes to a temp
 * name in the target directory, is fsynced, then renamed over the final name.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { AdapterFormatError, readSafetensorsLayout } from "@tributary/protocol";
import { CONFIG_FILE, decodeAdapter, encodeAdapter, WEIGHTS_FILE } from "./adapter-codec.ts";
import type { AdapterOutput, PeftAdapter } from "./adapter-types.ts";
import { readAt } from "./file-read.ts";
import { type LazyAdapter, lazyAdapter, placesIn } from "./lazy-adapter.ts";

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

async function readOrFail(path: string, hint = ""): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    const why = code === "ENOENT" ? `file not found${hint}` : `cannot read (${code ?? String(err)})`;
    throw new AdapterFormatError(`${path}: ${why}`, path, undefined, { cause: err });
  }
}

/**
 * Reads and validates the PEFT adapter in directory `dir`
 * (`adapter_config.json` + `adapter_model.safetensors`).
 *
 * @example
 * const adapter = await readAdapter("runs/client-3/adapter");
 */
export async function readAdapter(dir: string): Promise<PeftAdapter> {
  await checkDir(dir);
  const configText = (await readOrFail(join(dir, CONFIG_FILE))).toString("utf8");
  const weights = await readOrFail(join(dir, WEIGHTS_FILE), WEIGHTS_HINT);
  return decodeAdapter(configText, weights, labelOf(dir));
}

const WEIGHTS_HINT = " (only safetensors adapters are supported, not adapter_model.bin)";

/** The label prefixes file names in errors: no trailing separator. */
function labelOf(dir: string): string {
  return dir.replace(/[\\/]+$/, "") || dir;
}

async function checkDir(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) {
      throw new AdapterFormatError(`${dir}: not a directory (expected a PEFT adapter directory)`, dir);
    }
  } catch (err) {
    if (err instanceof AdapterFormatError) throw err;
    const code = errnoCode(err);
    const why = code === "ENOENT" ? "adapter directory not found" : `cannot access (${code ?? String(err)})`;
    throw new AdapterFormatError(`${dir}: ${why}`, dir, undefined, { cause: err });
  }
}

/** A PEFT adapter directory open for reading one module at a time. */
export interface OpenAdapterDir extends LazyAdapter {
  /** Closes the weights file. */
  close(): Promise<void>;
}

/**
 * Opens the PEFT adapter in directory `dir` lazily: the config and the
 * safetensors header are read and validated now, each tensor (decoded and
 * checked for NaN/Inf in the same pass) only when its module is loaded, with
 * a positioned read of exactly its bytes — so merging many adapters never
 * holds whole files.
 *
 * @example
 * const adapter = await openAdapterDir("runs/client-3/adapter");
 * try { const q = await adapter.loadModule("model.layers.0.self_attn.q_proj"); } finally { await adapter.close(); }
 */
export async function openAdapterDir(dir: string): Promise<OpenAdapterDir> {
  await checkDir(dir);
  const configText = (await readOrFail(join(dir, CONFIG_FILE))).toString("utf8");
  const path = join(dir, WEIGHTS_FILE);
  const handle = await open(path, "r").catch((err: unknown) => {
    const code = errnoCode(err);
    const why = code === "ENOENT" ? `file not found${WEIGHTS_HINT}` : `cannot read (${code ?? String(err)})`;
    throw new AdapterFormatError(`${path}: ${why}`, path, undefined, { cause: err });
  });
  try {
    const label = labelOf(dir);
    const file = `${label}/${WEIGHTS_FILE}`;
    const { size } = await handle.stat();
    const layout = await readSafetensorsLayout((at, n) => readAt(handle, at, n), size, file);
    const lazy = lazyAdapter(
      configText,
      layout.tensors,
      async (name) => {
        const t = layout.tensors.get(name)!;
        const bytes = await readAt(handle, t.offset, t.byteLength);
        if (bytes.length !== t.byteLength) {
          throw new AdapterFormatError(
            `${file}: tensor "${name}" is cut short (the file shrank)`,
            file,
            name,
          );
        }
        return bytes;
      },
      label,
      placesIn(path, layout.tensors),
    );
    return { ...lazy, close: () => handle.close() };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Writes `bytes` to `dir/name` via an fsynced temp file renamed into place. */
async function writeAtomic(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const final = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, final);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** Fsyncs a directory so renames in it survive a crash; a no-op where directories cannot be opened. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some platforms (Windows) cannot fsync a directory.
  } finally {
    await handle.close();
  }
}

/**
 * Encodes `out` and writes it as a PEFT adapter directory `dir` (created if
 * needed). The weights are written before the config, each atomically.
 *
 * @example
 * const { bytes } = await writeAdapter("out/round-4", { template, modules, dense, dtype: "BF16" });
 */
export async function writeAdapter(dir: string, out: AdapterOutput): Promise<{ bytes: number }> {
  const { configText, safetensors } = encodeAdapter(out);
  const config = new TextEncoder().encode(configText);
  await mkdir(dir, { recursive: true });
  await writeAtomic(dir, WEIGHTS_FILE, safetensors);
  await writeAtomic(dir, CONFIG_FILE, config);
  await syncDir(dir);
  return { bytes: safetensors.length + config.length };
}
