/** The per-module summary of a merge, as JSON (`--report`) and as a text table. */
import type { MergeOptions } from "../merge/options.ts";
import type { MergeOutcome } from "../pipeline/merge-adapters.ts";

/** One module's line of the report. */
export interface ModuleReportEntry {
  /** Normalised per-adapter weights, in input order. */
  readonly weights: number[];
  readonly objective: number | null;
  readonly iterations: number;
  /** `‖BA − M‖²_F` to the method's full-rank combination, when defined. */
  readonly residual: number | null;
  readonly solver: string;
  readonly rank: number;
  readonly ms: number;
}

/** The JSON written by `tributary merge --report FILE`. */
export interface MergeReport {
  readonly method: string;
  readonly backend: string;
  readonly inputs: string[];
  readonly options: MergeOptions;
  readonly mergeMs: number;
  readonly modules: Record<string, ModuleReportEntry>;
  readonly dense: Record<string, { readonly weights: number[] }>;
}

/** Collects the report of a finished merge. */
export function buildReport(
  inputs: readonly { readonly label: string }[],
  outcome: MergeOutcome,
  options: MergeOptions,
  backend: string,
): MergeReport {
  const modules: Record<string, ModuleReportEntry> = {};
  for (const [name, { result, ms }] of outcome.modules) {
    modules[name] = {
      weights: result.report.weights,
      objective: result.report.objective,
      iterations: result.report.iterations,
      residual: result.report.residual,
      solver: result.report.solver,
      rank: result.merged.rank,
      ms: Math.round(ms * 10) / 10,
    };
  }
  const dense: Record<string, { weights: number[] }> = {};
  for (const [name, d] of outcome.dense) dense[name] = { weights: d.weights };
  return {
    method: options.method,
    backend,
    inputs: inputs.map((i) => i.label),
    options,
    mergeMs: Math.round(outcome.ms),
    modules,
    dense,
  };
}

function weightsText(w: readonly number[]): string {
  if (w.length <= 6) return w.map((x) => x.toFixed(3)).join(" ");
  return `${Math.min(...w).toFixed(3)}…${Math.max(...w).toFixed(3)} (${w.length})`;
}

/** The report as aligned text lines: one row per module, then dense tensors. */
export function formatSummary(report: MergeReport): string[] {
  const header = ["module", "rank", "solver", "iters", "objective", "time", "weights"];
  const rows = Object.entries(report.modules).map(([name, m]) => [
    name,
    String(m.rank),
    m.solver,
    String(m.iterations),
    m.objective === null ? "–" : m.objective.toPrecision(6),
    `${m.ms.toFixed(0)} ms`,
    weightsText(m.weights),
  ]);
  for (const [name, d] of Object.entries(report.dense)) {
    rows.push([name, "dense", "mean", "0", "–", "–", weightsText(d.weights)]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
