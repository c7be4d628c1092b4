/**
 * The federated demo's learning task: seeded, procedurally generated
 * classification in `R^dim` with a natural non-IID split.
 *
 * - Each class is a mixture of `modesPerClass` Gaussian clusters (`σ = noise`)
 *   around means that are most spread out in a `shiftDims`-dimensional
 *   subspace `U`, so the classes are not linearly separable and the
 *   discriminative directions are concentrated in `U`.
 * - The frozen base network is trained on this *pretraining* distribution.
 * - Every node sees a *shifted* distribution the base never saw:
 *   `x' = R x + o_c`, where `R` rotates the planes of `U` by `shiftAngle`
 *   (a shared domain shift, rank ≤ `shiftDims`) and `o_c` is a class-specific
 *   offset inside `U` (what only the nodes holding class `c` can learn).
 * - Node `i` holds only classes `(i·classesPerNode + j) mod classes`, so each
 *   local adapter learns its own classes; the global test set has them all.
 *
 * Everything is a pure function of the spec (its `seed` included).
 */
import { normalAt, streamKey, uniformAt } from "../../merge/random.ts";

/** Parameters of the task; `createTask` fills in `DEFAULT_TASK_SPEC` for the rest. */
export interface TaskSpec {
  /** Input dimension `d`. */
  readonly dim: number;
  /** Number of classes `K`. */
  readonly classes: number;
  /** Gaussian clusters per class. */
  readonly modesPerClass: number;
  /** Standard deviation of the noise around a cluster mean. */
  readonly noise: number;
  /** Dimension of the subspace `U` that holds most of the class structure and the shift. */
  readonly shiftDims: number;
  /** Standard deviation of cluster-mean coordinates inside `U`. */
  readonly spreadIn: number;
  /** Standard deviation of cluster-mean coordinates outside `U`. */
  readonly spreadOut: number;
  /** Rotation angle (radians) of every plane of `U` in the shifted distribution. */
  readonly shiftAngle: number;
  /** Standard deviation of the class-specific offsets `o_c` (inside `U`). */
  readonly classOffset: number;
  /** Number of training nodes. */
  readonly nodes: number;
  /** Classes per node (consecutive, modulo `classes`). */
  readonly classesPerNode: number;
  /** Training samples per class of node 0 (shifted distribution). */
  readonly trainPerClass: number;
  /**
   * Quantity skew: node `i` has `trainPerClass · sizeSkew^(−i/(nodes−1))`
   * training samples per class, so the last node has `sizeSkew` times fewer
   * than the first (1 = equal sizes).
   */
  readonly sizeSkew: number;
  /** Test samples per class per node, and per class in the global test set. */
  readonly testPerClass: number;
  /** Samples per class of the pretraining set the base network is trained on. */
  readonly pretrainPerClass: number;
  readonly seed: number;
}

/** Defaults: 10 classes in R^32, 5 nodes with 2 classes each. */
export const DEFAULT_TASK_SPEC: TaskSpec = {
  dim: 32,
  classes: 10,
  modesPerClass: 2,
  noise: 1,
  shiftDims: 6,
  spreadIn: 2.2,
  spreadOut: 0.35,
  shiftAngle: (2 * Math.PI) / 5,
  classOffset: 1.2,
  nodes: 5,
  classesPerNode: 2,
  trainPerClass: 150,
  sizeSkew: 1,
  testPerClass: 100,
  pretrainPerClass: 400,
  seed: 1,
};

/** Labelled samples: `x` is row-major `n × dim`, `y[i]` in `[0, classes)`. */
export interface Dataset {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
  readonly dim: number;
}

/** One node's private data: train and test splits of its classes, shifted distribution. */
export interface NodeData {
  readonly node: number;
  readonly classes: readonly number[];
  readonly train: Dataset;
  readonly test: Dataset;
}

/** A generated task. */
export interface Task {
  readonly spec: TaskSpec;
  /** Pretraining distribution (what the base network is trained on) and a held-out test set of it. */
  readonly pretrain: { readonly train: Dataset; readonly test: Dataset };
  /** Shifted distribution, every class: the global test set. */
  readonly globalTest: Dataset;
  readonly nodes: readonly NodeData[];
}

/** Geometry drawn from the seed: cluster means, the subspace `U` and the class offsets. */
interface Geometry {
  /** `classes · modesPerClass` means, each a `dim` vector. */
  readonly means: Float64Array[];
  /** `shiftDims` orthonormal vectors spanning `U`. */
  readonly u: Float64Array[];
  /** Class offsets `o_c` (already in input coordinates). */
  readonly offsets: Float64Array[];
}

/** Classes held by node `node`: `(node · classesPerNode + j) mod classes`. */
export function nodeClasses(spec: TaskSpec, node: number): number[] {
  return Array.from(
    { length: spec.classesPerNode },
    (_, j) => (node * spec.classesPerNode + j) % spec.classes,
  );
}

/** Training samples per class of node `node` (see `TaskSpec.sizeSkew`). */
export function trainPerClass(spec: TaskSpec, node: number): number {
  const t = spec.nodes > 1 ? node / (spec.nodes - 1) : 0;
  return Math.max(1, Math.round(spec.trainPerClass * spec.sizeSkew ** -t));
}

/**
 * Generates the task. Same spec (seed included) → same bytes.
 *
 * @example
 * const task = createTask({ nodes: 4, seed: 7 });
 * task.nodes[0].classes; // [0, 1]
 */
export function createTask(partial: Partial<TaskSpec> = {}): Task {
  const spec: TaskSpec = { ...DEFAULT_TASK_SPEC, ...partial };
  validate(spec);
  const g = geometry(spec);
  const all = Array.from({ length: spec.classes }, (_, c) => c);
  const nodes = Array.from({ length: spec.nodes }, (_, i): NodeData => {
    const classes = nodeClasses(spec, i);
    return {
      node: i,
      classes,
      train: sample(spec, g, classes, trainPerClass(spec, i), true, streamKey(spec.seed, "node", i, "train")),
      test: sample(spec, g, classes, spec.testPerClass, true, streamKey(spec.seed, "node", i, "test")),
    };
  });
  return {
    spec,
    pretrain: {
      train: sample(spec, g, all, spec.pretrainPerClass, false, streamKey(spec.seed, "pretrain", "train")),
      test: sample(spec, g, all, spec.testPerClass, false, streamKey(spec.seed, "pretrain", "test")),
    },
    globalTest: sample(spec, g, all, spec.testPerClass, true, streamKey(spec.seed, "global", "test")),
    nodes,
  };
}

function validate(s: TaskSpec): void {
  const ints: (keyof TaskSpec)[] = ["dim", "classes", "modesPerClass", "nodes", "classesPerNode"];
  for (const k of ints) {
    if (!Number.isInteger(s[k]) || (s[k] as number) < 1) throw new RangeError(`task: ${k} must be ≥ 1`);
  }
  if (!(s.shiftDims >= 2 && s.shiftDims <= s.dim && s.shiftDims % 2 === 0))
    throw new RangeError(`task: shiftDims must be even and in [2, dim], got ${s.shiftDims}`);
  if (s.classesPerNode > s.classes) throw new RangeError("task: classesPerNode must be ≤ classes");
  if (!(s.sizeSkew >= 1)) throw new RangeError(`task: sizeSkew must be ≥ 1, got ${s.sizeSkew}`);
}

/** Gram–Schmidt on seeded Gaussian vectors: `count` orthonormal vectors of length `dim`. */
function orthonormal(dim: number, count: number, key: number): Float64Array[] {
  const out: Float64Array[] = [];
  for (let j = 0; j < count; j++) {
    const v = Float64Array.from({ length: dim }, (_, i) => normalAt(key, j * dim + i));
    for (const q of out) {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += q[i] * v[i];
      for (let i = 0; i < dim; i++) v[i] -= dot * q[i];
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < dim; i++) v[i] /= norm;
    out.push(v);
  }
  return out;
}

function geometry(s: TaskSpec): Geometry {
  const basis = orthonormal(s.dim, s.dim, streamKey(s.seed, "basis"));
  const u = basis.slice(0, s.shiftDims);
  const meanKey = streamKey(s.seed, "means");
  const means = Array.from({ length: s.classes * s.modesPerClass }, (_, m) => {
    const mu = new Float64Array(s.dim);
    basis.forEach((q, j) => {
      const coef = normalAt(meanKey, m * s.dim + j) * (j < s.shiftDims ? s.spreadIn : s.spreadOut);
      for (let i = 0; i < s.dim; i++) mu[i] += coef * q[i];
    });
    return mu;
  });
  const offKey = streamKey(s.seed, "offsets");
  const offsets = Array.from({ length: s.classes }, (_, c) => {
    const o = new Float64Array(s.dim);
    u.forEach((q, j) => {
      const coef = normalAt(offKey, c * s.shiftDims + j) * s.classOffset;
      for (let i = 0; i < s.dim; i++) o[i] += coef * q[i];
    });
    return o;
  });
  return { means, u, offsets };
}

/** `R x` with `R = I + U (Q − I) Uᵀ`, `Q` rotating each plane `(u_2p, u_2p+1)` by `angle`. */
function rotate(x: Float64Array, u: readonly Float64Array[], angle: number): void {
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  for (let p = 0; p + 1 < u.length; p += 2) {
    const [e, f] = [u[p], u[p + 1]];
    let a = 0;
    let b = 0;
    for (let i = 0; i < x.length; i++) {
      a += e[i] * x[i];
      b += f[i] * x[i];
    }
    const da = cos * a - sin * b - a;
    const db = sin * a + cos * b - b;
    for (let i = 0; i < x.length; i++) x[i] += da * e[i] + db * f[i];
  }
}

/** `perClass` samples of each class in `classes`, classes interleaved, shifted or not. */
function sample(
  s: TaskSpec,
  g: Geometry,
  classes: readonly number[],
  perClass: number,
  shifted: boolean,
  key: number,
): Dataset {
  const n = classes.length * perClass;
  const x = new Float32Array(n * s.dim);
  const y = new Int32Array(n);
  const v = new Float64Array(s.dim);
  for (let k = 0; k < n; k++) {
    const c = classes[k % classes.length];
    const mode = Math.min(s.modesPerClass - 1, Math.floor(uniformAt(key, k) * s.modesPerClass));
    const mu = g.means[c * s.modesPerClass + mode];
    for (let i = 0; i < s.dim; i++) v[i] = mu[i] + s.noise * normalAt(key, n + k * s.dim + i);
    if (shifted) {
      rotate(v, g.u, s.shiftAngle);
      for (let i = 0; i < s.dim; i++) v[i] += g.offsets[c][i];
    }
    x.set(v, k * s.dim);
    y[k] = c;
  }
  return { x, y, n, dim: s.dim };
}
