/**
 * `k`-th largest absolute value of a vector (1-based `k`), by in-place
 * quickselect on a copy of `|x|`: expected `O(n)`.
 * Dense meaning: `sort(|x|, descending)[k − 1]`.
 */
export function kthLargestAbs(x: Float32Array | Float64Array, k: number): number {
  const n = x.length;
  if (k < 1 || k > n) throw new RangeError(`k = ${k} out of 1..${n}`);
  const v = x instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.abs(x[i]);
  // k-th largest = element at index n − k of the ascending order.
  const target = n - k;
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // median of three as pivot
    const a = v[lo];
    const b = v[mid];
    const c = v[hi];
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        const t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return v[target];
  }
  return v[target];
}
