/**
 * `tributary privacy epsilon|noise`: the accountant offline. `epsilon`
 * prints the ε that `--rounds` rounds of the subsampled Gaussian mechanism
 * spend; `noise` prints the smallest noise multiplier that keeps them within
 * an ε budget. The same accounting as a federation with central DP (RDP at
 * Opacus's orders, Balle et al.'s conversion).
 */
import { epsilonOf, noiseFor } from "@tributary/protocol";
import { integerOption, numberOption, parseFlags, UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";
import { CommandError } from "./system-errors.ts";

/** Help text of `tributary privacy`. */
export const PRIVACY_USAGE = `Usage: tributary privacy epsilon --noise-multiplier Z --sampling-rate Q --rounds T --delta D
       tributary privacy noise --epsilon E --sampling-rate Q --rounds T --delta D

The privacy accountant of central differential privacy, offline: Rényi DP of
the subsampled Gaussian mechanism at Opacus's orders, converted to (ε, δ).
One round is one step; its sampling rate is cohort / enrolled clients.

  epsilon   print the ε that T rounds spend (and the RDP order that gave it)
  noise     print the smallest noise multiplier whose T rounds spend at most E

Options:
  --noise-multiplier Z   noise standard deviation / clipping norm (epsilon)
  --epsilon E            the budget (noise)
  --sampling-rate Q      in (0, 1]: clients per round / clients enrolled
  --rounds T             rounds (steps)
  --delta D              in (0, 1), e.g. 1e-5 (below 1 / clients enrolled)
  --json                 print one JSON object`;

/** Runs `tributary privacy`; returns the exit code. */
export async function runPrivacy(argv: readonly string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === "--help" || action === "-h" || action === "help") {
    io.out(PRIVACY_USAGE);
    return 0;
  }
  if (action !== "epsilon" && action !== "noise")
    throw new UsageError(`unknown privacy action "${action}" (expected epsilon or noise)`);
  const json = rest.includes("--json");
  const flags = parseFlags(
    rest.filter((a) => a !== "--json"),
    ["noise-multiplier", "epsilon", "sampling-rate", "rounds", "delta"],
  );
  if (flags.help) {
    io.out(PRIVACY_USAGE);
    return 0;
  }
  const need = (flag: string): string => {
    const v = flags.value(flag);
    if (v === undefined || v === "") throw new UsageError(`privacy ${action} needs --${flag}`);
    return v;
  };
  const q = numberOption("sampling-rate", need("sampling-rate")) as number;
  if (!(q > 0 && q <= 1)) throw new UsageError(`--sampling-rate must be in (0, 1], got ${q}`);
  const rounds = integerOption("rounds", need("rounds")) as number;
  if (rounds < 1) throw new UsageError(`--rounds must be at least 1, got ${rounds}`);
  const delta = numberOption("delta", need("delta")) as number;
  if (!(delta > 0 && delta < 1)) throw new UsageError(`--delta must be in (0, 1), got ${delta}`);
  if (action === "epsilon") {
    const z = numberOption("noise-multiplier", need("noise-multiplier")) as number;
    if (!(z >= 0)) throw new UsageError(`--noise-multiplier must be at least 0, got ${z}`);
    const spent = epsilonOf({ q, noiseMultiplier: z, steps: rounds }, delta);
    io.out(
      json
        ? JSON.stringify({
            epsilon: spent.epsilon,
            order: spent.order,
            delta,
            noiseMultiplier: z,
            samplingRate: q,
            rounds,
          })
        : `ε = ${spent.epsilon.toFixed(6)} at δ = ${delta} after ${rounds} rounds (noise multiplier ${z}, sampling rate ${q}; RDP order ${spent.order})`,
    );
    return 0;
  }
  const epsilon = numberOption("epsilon", need("epsilon")) as number;
  if (!(epsilon > 0)) throw new UsageError(`--epsilon must be above 0, got ${epsilon}`);
  let z: number;
  try {
    z = noiseFor({ epsilon, delta, q, steps: rounds });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new CommandError(
      `${err.message}: allow a larger --epsilon, fewer --rounds or a lower --sampling-rate`,
    );
  }
  const spent = epsilonOf({ q, noiseMultiplier: z, steps: rounds }, delta);
  io.out(
    json
      ? JSON.stringify({ noiseMultiplier: z, epsilon: spent.epsilon, delta, samplingRate: q, rounds })
      : `noise multiplier ${z.toFixed(4)}: ε = ${spent.epsilon.toFixed(6)} ≤ ${epsilon} at δ = ${delta} after ${rounds} rounds (sampling rate ${q})`,
  );
  return 0;
}
