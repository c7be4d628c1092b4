/**
 * `npm run bench -- rank-collapse`: does a heterogeneous-rank federation's
 * global adapter keep its energy above the smallest client rank?
 *
 * A simulated federation of one `dim × dim` module. Clients train at
 * `r ∈ {4, 8, 16}` (`--per-rank` clients each), toward targets that share
 * a rank-16 structure whose singular values fall from 1 to 0.3, plus a small
 * part of their own. Each round, every client:
 *
 * - receives the global update truncated to its own rank, as FlexLoRA sends
 *   it (zero factors with a small random `A` in round 1);
 * - runs `--steps` gradient steps on `½‖BA − T_i‖²`;
 * - sends its factors.
 *
 * The server merges them at rank 16 by FedAvg of the products (FlexLoRA's
 * aggregation), by rank partitions (raFLoRA) or by FroM. The table gives the
 * share of the global update's energy `Σσ²` in the rank partitions 1–4, 5–8
 * and 9–16 after some rounds, and its distance to the mean target's best
 * rank-16 approximation.
 */
import { parseArgs } from "node:util";
import { Matrix } from "ml-matrix";
import { selectBackend } from "../server/src/compute/backend.ts";
import { mergeModule } from "../server/src/merge/engine.ts";
import { resolveOptions } from "../server/src/merge/options.ts";
import { normalAt, streamKey } from "../server/src/merge/random.ts";
import { thinSvd, truncatedSvd } from "../server/src/merge/reference/index.ts";
import { denseOfMerged } from "../server/src/merge/testing/dense-of.ts";
import type { ClientLora } from "../server/src/merge/types.ts";
import { publishTable } from "./bench-output.ts";

const RANKS = [4, 8, 16];
const METHODS = [
  ["FlexLoRA (FedAvg of the products)", "fedavg"],
  ["rank-partition (raFLoRA)", "rank-partition"],
  ["FroM", "from"],
] as const;

function gaussian(rows: number, cols: number, key: number, sd: number): Matrix {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) m.set(i, j, sd * normalAt(key, i * cols + j));
  return m;
}

/** An orthonormal `dim × k` basis from a Gaussian matrix. */
function basis(dim: number, k: number, key: number): Matrix {
  return thinSvd(gaussian(dim, k, key, 1)).u;
}

/** Each partition's share of `Σσ²` of `g`. */
function energyShares(g: Matrix): number[] {
  const s = thinSvd(g).s;
  const total = s.reduce((a, x) => a + x * x, 0);
  let start = 0;
  return RANKS.map((end) => {
    let e = 0;
    for (let k = start; k < end && k < s.length; k++) e += s[k] * s[k];
    start = end;
    return total === 0 ? 0 : e / total;
  });
}

/** The factors a client starts a round from: the global update truncated to its rank. */
function received(global: Matrix, rank: number, client: number, round: number): { b: Matrix; a: Matrix } {
  const t = truncatedSvd(global, rank);
  if (t.s.length === rank && t.s[rank - 1] > 0) return { b: t.b, a: t.a };
  // Round 1 (or a global update of lower rank): LoRA's init, B = 0 and a small random A.
  return {
    b: Matrix.zeros(global.rows, rank),
    a: gaussian(rank, global.columns, streamKey(11, "init", client, round), 0.01),
  };
}

/** Runs the rank-collapse benchmark and prints a Markdown table. */
export async function runRankCollapseBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dim: { type: "string", default: "64" },
      rounds: { type: "string", default: "20" },
      steps: { type: "string", default: "10" },
      lr: { type: "string", default: "0.3" },
      "per-rank": { type: "string", default: "2" },
    },
  });
  const dim = Number(values.dim);
  const rounds = Number(values.rounds);
  const steps = Number(values.steps);
  const lr = Number(values.lr);
  const perRank = Number(values["per-rank"]);
  await selectBackend();
  const ranks = RANKS.flatMap((r) => new Array<number>(perRank).fill(r));
  // Shared structure: rank 16, singular values 1 → 0.3; each client adds its own small part.
  const u = basis(dim, 16, streamKey(1, "U"));
  const v = basis(dim, 16, streamKey(1, "V"));
  const sigma = Matrix.diag(Array.from({ length: 16 }, (_, k) => 1 - (0.7 * k) / 15));
  const shared = u.mmul(sigma).mmul(v.transpose());
  const targets = ranks.map((_, i) => shared.clone().add(gaussian(dim, dim, streamKey(2, "own", i), 0.02)));
  const meanTarget = targets.reduce((acc, t) => acc.add(t), Matrix.zeros(dim, dim)).div(targets.length);
  const ideal = (() => {
    const t = truncatedSvd(meanTarget, 16);
    return t.b.mmul(t.a);
  })();
  const report = [1, 5, 10, rounds].filter((r, i, all) => r <= rounds && all.indexOf(r) === i);
  const rows: string[] = [];
  for (const [label, method] of METHODS) {
    let global = Matrix.zeros(dim, dim);
    for (let round = 1; round <= rounds; round++) {
      const clients: ClientLora[] = ranks.map((rank, i) => {
        let { b, a } = received(global, rank, i, round);
        for (let s = 0; s < steps; s++) {
          const r = b.mmul(a).sub(targets[i]);
          const gb = r.mmul(a.transpose());
          const ga = b.transpose().mmul(r);
          b = b.sub(gb.mul(lr));
          a = a.sub(ga.mul(lr));
        }
        return { b: Float32Array.from(b.to1DArray()), a: Float32Array.from(a.to1DArray()), rank, scaling: 1 };
      });
      const merged = mergeModule(
        { name: "layers.0.q_proj", dOut: dim, dIn: dim, clients },
        resolveOptions({ method, rank: 16 }),
      );
      global = new Matrix([...chunk(denseOfMerged(merged.merged, dim, dim), dim)]);
      if (report.includes(round)) {
        const shares = energyShares(global);
        const err = global.clone().sub(ideal).norm() / ideal.norm();
        rows.push(
          `| ${label} | ${round} | ${shares.map((x) => (100 * x).toFixed(1)).join(" | ")} | ${err.toFixed(3)} |`,
        );
      }
    }
  }
  const ideals = energyShares(ideal);
  const table = [
    `Energy of the global update per rank partition (% of Σσ²), ${ranks.length} clients at r ∈ {${RANKS.join(", ")}} (${perRank} each), ${dim}×${dim}, ${steps} local steps of lr ${lr}; merged at rank 16.`,
    `The mean target's best rank-16 approximation has ${ideals.map((x) => (100 * x).toFixed(1)).join(" / ")} %.`,
    "",
    "| aggregation | round | σ 1–4 | σ 5–8 | σ 9–16 | ‖G − ideal‖ / ‖ideal‖ |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  publishTable("rank-collapse", table);
}

function* chunk(data: Float64Array, cols: number): Generator<number[]> {
  for (let i = 0; i < data.length; i += cols) yield Array.from(data.subarray(i, i + cols));
}
