/**
 * Seeded randomness for the simulators: the same seed gives the same run, so a measurement or a
 * comparison of policies can be repeated exactly.
 */

/** mulberry32: small, fast and good enough for simulated noise (not for keys). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal variate (Box-Muller). */
export function normal(uniform: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** A whole number from 0 to `n` - 1. */
export function below(uniform: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(uniform() * n));
}

/** Shuffles `items` in place (Fisher-Yates) and returns them. */
export function shuffle<T>(uniform: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = below(uniform, i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
