/**
 * Every merge method, one object each (`../method.ts`). Adding a method is
 * its file in this folder (with its `MergeMethod`), its name in
 * `../params.ts`'s `METHODS`, its entry here, its dense reference in
 * `../reference/`, and its test; new parameters go into `../params.ts` and
 * `tributary.v1.MergeSpec`.
 */
import type { MergeMethod } from "../method.ts";
import type { MethodName } from "../params.ts";
import { coreSpaceMethod } from "./core-space.ts";
import { dareMethod } from "./dare.ts";
import { fedavgMethod } from "./fedavg.ts";
import { fedavgFactorsMethod } from "./fedavg-factors.ts";
import { feditMethod } from "./fedit.ts";
import { floraMethod } from "./flora.ts";
import { frMethod } from "./fr.ts";
import { fromMethod } from "./from.ts";
import { knotsMethod } from "./knots.ts";
import { loreMethod } from "./lore.ts";
import { medianMethod } from "./median.ts";
import { rankPartitionMethod } from "./rank-partition.ts";
import { taskArithmeticMethod } from "./task-arithmetic.ts";
import { tiesMethod } from "./ties.ts";

/** The registry: a method by its name. */
export const MERGE_METHODS: Readonly<Record<MethodName, MergeMethod>> = {
  from: fromMethod,
  lore: loreMethod,
  fr: frMethod,
  fedavg: fedavgMethod,
  "fedavg-factors": fedavgFactorsMethod,
  fedit: feditMethod,
  flora: floraMethod,
  knots: knotsMethod,
  "core-space": coreSpaceMethod,
  "rank-partition": rankPartitionMethod,
  "task-arithmetic": taskArithmeticMethod,
  ties: tiesMethod,
  dare: dareMethod,
  median: medianMethod,
};

/** The method named `name` (resolved options always name one). */
export function methodOf(name: MethodName): MergeMethod {
  return MERGE_METHODS[name];
}
