/**
 * Buffered asynchronous rounds (FedBuff, Nguyen et al. 2022;
 * `RoundPolicy.buffered`). An update names the round that was open when its
 * client fetched the global adapter (its header's `round`); it is folded in
 * the round open when it arrives, with staleness `τ = open − named`, and
 * refused past `maxStaleness`. A full buffer (`size` updates) folds into the
 * global adapter as `global + η Σ s(τ_i) w_i Θ_i`, the rank step exact.
 * These are the pure parts; intake, the scheduler and the round merge call
 * them.
 */
import type {
  BufferedRounds,
  Federation,
  RoundRecord,
  StalenessFunction,
  UpdateRecord,
} from "../core/model.ts";
import { StaleRoundError } from "./errors.ts";

/** `s(τ)`: 1, `(1 + τ)^−a`, or the hinge `1` for `τ ≤ b` then `1 / (a(τ − b) + 1)`. */
export function stalenessWeight(f: StalenessFunction, tau: number): number {
  switch (f.kind) {
    case "constant":
      return 1;
    case "polynomial":
      return (1 + tau) ** -f.a;
    case "hinge":
      return tau <= f.b ? 1 : 1 / (f.a * (tau - f.b) + 1);
  }
}

/**
 * The round an update naming round `named` is folded in: the open round
 * `current`, when `named` is at most `maxStaleness` rounds behind it and not
 * ahead of it. Throws `StaleRoundError` saying which otherwise.
 */
export function foldRound(
  federation: Federation,
  buffered: BufferedRounds,
  named: number,
  current: RoundRecord | undefined,
): number {
  if (current === undefined || current.state !== "open") {
    throw new StaleRoundError(federation.id, named, current);
  }
  if (named > current.number) {
    throw new StaleRoundError(federation.id, named, current, "is not open yet");
  }
  const tau = current.number - named;
  if (tau > buffered.maxStaleness) {
    throw new StaleRoundError(
      federation.id,
      named,
      current,
      `is ${tau} rounds behind the open round, beyond this federation's max staleness ${buffered.maxStaleness}: fetch the latest global adapter and train from it`,
    );
  }
  return current.number;
}

/**
 * Each buffered update's coefficient in the fold: `η s(τ_i) w_i`, with `w_i`
 * the sample weights of the buffer (equal when no update has a count).
 */
export function foldCoefficients(buffered: BufferedRounds, updates: readonly UpdateRecord[]): number[] {
  const total = updates.reduce((s, u) => s + u.samples, 0);
  return updates.map((u) => {
    const w = total > 0 ? u.samples / total : 1 / updates.length;
    const tau = u.round - (u.baseRound ?? u.round);
    return buffered.serverLr * stalenessWeight(buffered.staleness, tau) * w;
  });
}
