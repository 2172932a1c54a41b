/**
 * Which requests read a profile: quantities in the same register space whose registers are
 * contiguous, or at most `maxGap` registers apart, are read in one request, up to the meter's
 * limit per request, so a bus at 9600 baud spends its time on data rather than on request
 * overhead.
 */
import { type Quantity, REGISTERS } from './profile.js';

export interface ReadRequest {
  readonly function: 'holding' | 'input';
  readonly start: number;
  readonly count: number;
  readonly quantities: readonly Quantity[];
}

export function planReads(
  all: readonly Quantity[],
  maxRegisters: number,
  maxGap = 0,
): ReadRequest[] {
  const requests: ReadRequest[] = [];
  for (const fn of ['holding', 'input'] as const) {
    const sorted = all.filter((q) => q.function === fn).sort((a, b) => a.register - b.register);
    let current: { start: number; end: number; quantities: Quantity[] } | undefined;
    for (const quantity of sorted) {
      const end = quantity.register + REGISTERS[quantity.encoding];
      if (
        current &&
        quantity.register <= current.end + maxGap &&
        Math.max(end, current.end) - current.start <= maxRegisters
      ) {
        current.end = Math.max(current.end, end);
        current.quantities.push(quantity);
        continue;
      }
      if (current) requests.push(request(fn, current));
      current = { start: quantity.register, end, quantities: [quantity] };
    }
    if (current) requests.push(request(fn, current));
  }
  return requests;
}

function request(
  fn: 'holding' | 'input',
  run: { start: number; end: number; quantities: Quantity[] },
): ReadRequest {
  return { function: fn, start: run.start, count: run.end - run.start, quantities: run.quantities };
}
