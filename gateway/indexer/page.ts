/**
 * Newest-first pages over a list kept in chain order, with a cursor: the chain position of the
 * last item served. Positions never change for an event that stays on the chain, so a cursor
 * survives new blocks arriving between two page requests (an offset would shift).
 */

/** Where an event sits on the chain: its block and its log index in that block. */
export interface Cursor {
  readonly block: number;
  readonly logIndex: number;
}

export interface PageRequest {
  readonly limit: number;
  /** Only items strictly older than this position; the newest when absent. */
  readonly before?: Cursor | undefined;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Position of the last item when older matching items remain, else null. */
  readonly next: Cursor | null;
}

export function compareCursors(a: Cursor, b: Cursor): number {
  return a.block - b.block || a.logIndex - b.logIndex;
}

/** Number of items of `sorted` (ascending by position) strictly before `cursor`. */
function countBefore<T>(sorted: readonly T[], positionOf: (item: T) => Cursor, cursor: Cursor) {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareCursors(positionOf(sorted[middle] as T), cursor) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function newestFirst<T>(
  sorted: readonly T[],
  positionOf: (item: T) => Cursor,
  keep: (item: T) => boolean,
  request: PageRequest,
): Page<T> {
  const end =
    request.before === undefined ? sorted.length : countBefore(sorted, positionOf, request.before);
  const items: T[] = [];
  for (let i = end - 1; i >= 0; i--) {
    const item = sorted[i] as T;
    if (!keep(item)) continue;
    // One match beyond the page proves there is a next page, so `next` is never a dead end.
    if (items.length === request.limit) {
      return { items, next: positionOf(items[items.length - 1] as T) };
    }
    items.push(item);
  }
  return { items, next: null };
}
