/**
 * An adapter as its modules' task vectors `s·B·A` (dense, float64), for
 * tests that check a merged adapter against a dense formula.
 */
import { Matrix } from "ml-matrix";
import { decodeAdapter, readAdapter } from "../../server/src/peft/index.ts";
import { denseProduct } from "../../server/src/peft/testing/fixtures.ts";

/** One module's task vector, row-major `dOut × dIn`, and its rank. */
export interface ModuleProduct {
  readonly dense: Float64Array;
  readonly rank: number;
  readonly dOut: number;
  readonly dIn: number;
}

/** Each module's `s·B·A`, by module name. */
export type ModuleProducts = Map<string, ModuleProduct>;

function productsOf(modules: ReturnType<typeof decodeAdapter>["modules"]): ModuleProducts {
  return new Map(
    [...modules].map(([name, m]) => [
      name,
      { dense: denseProduct(m.b, m.a, m.rank, m.scaling), rank: m.rank, dOut: m.dOut, dIn: m.dIn },
    ]),
  );
}

/** The products of an adapter in memory (`adapter_config.json` text and safetensors bytes). */
export function moduleProducts(configJson: string, bytes: Uint8Array): ModuleProducts {
  return productsOf(decodeAdapter(configJson, bytes, "adapter").modules);
}

/** The products of a PEFT adapter directory. */
export async function moduleProductsOfDir(dir: string): Promise<ModuleProducts> {
  return productsOf((await readAdapter(dir)).modules);
}

/** A row-major `rows × cols` array as an ml-matrix `Matrix`. */
export function asMatrix(data: Float64Array, rows: number, cols: number): Matrix {
  return new Matrix(
    Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols))),
  );
}
