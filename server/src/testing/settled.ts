/**
 * Whether `p` has settled once pending work had a moment: the next turn of
 * the event loop, or `waitMs` when other threads must answer first.
 *
 * @example
 * assert.equal(await settled(gate.enter()), false);
 */
export async function settled(p: Promise<unknown>, waitMs = 0): Promise<boolean> {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((r) => (waitMs > 0 ? setTimeout(r, waitMs) : setImmediate(r)));
  return done;
}
