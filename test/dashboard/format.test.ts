/**
 * The dashboard's formatting of amounts and windows, run in Node (the module is the browser's own,
 * plain ES with Intl only), in the machine's locale and time zone.
 */
import { describe, expect, it } from 'vitest';

// A .js module of the page: imported by URL, as tsc would not type an import of it from here.
const module = new URL('../../gateway/dashboard/public/format.js', import.meta.url).href;
const format = (await import(module)) as {
  span: (startS: number, endS: number) => string;
  tokens: (baseUnits: string) => string;
  price: (perMilliUnit: string, unit: string) => string;
};

/** 2026-12-08 09:00:00 UTC. */
const NINE = Date.UTC(2026, 11, 8, 9) / 1000;

describe('dashboard formatting', () => {
  it('shows a window with the end date only when it is another day, and seconds when short', () => {
    // Intl takes the machine's zone and locale: compare the shapes, not one locale's spelling.
    const long = format.span(NINE, NINE + 4 * 3600);
    expect(long.split(' to ')[0]).toMatch(/2026/);
    expect(long.split(' to ')[1]).not.toMatch(/2026/);
    expect(long).not.toMatch(/:\d\d:\d\d/);
    const short = format.span(NINE, NINE + 30);
    // A window of 30 s shows its seconds, else it would read as starting and ending at once.
    expect(short).toMatch(/:\d\d:\d\d.* to .*:\d\d:\d\d/);
    expect(short.split(' to ')[1]).not.toMatch(/2026/);
    expect(format.span(NINE, NINE + 2 * 86_400).split(' to ')[1]).toMatch(/2026/);
  });

  it('shifts exact decimal amounts: tokens and prices', () => {
    expect(format.tokens('3500000000000000000000')).toMatch(/^3.?500 tokens$/);
    expect(format.price('35000000000000000', 'm3')).toBe('35 tokens/m3');
  });
});
