import { describe, expect, it } from 'vitest';
import { formatPrice, getUtility, UTILITIES, UTILITY_IDS } from '../../core/utilities.js';

describe('utilities as data', () => {
  it('has biogas, electricity and heat with units and provider tariffs', () => {
    expect(UTILITY_IDS).toEqual(['biogas', 'electricity', 'heat']);
    expect(UTILITIES.biogas).toMatchObject({
      unit: 'm3',
      provider_sells_at: 80_000,
      provider_buys_at: 20_000,
    });
    expect(UTILITIES.electricity.unit).toBe('kWh');
    expect(UTILITIES.heat.unit).toBe('kWh');
    for (const id of UTILITY_IDS) {
      const u = UTILITIES[id];
      expect(u.provider_buys_at).toBeLessThanOrEqual(u.provider_sells_at);
      expect(u.price_tick).toBeGreaterThan(0);
      expect(u.quantity_tick).toBeGreaterThan(0);
      // Tariffs sit on the price grid, so they can be offered exactly.
      expect(u.provider_sells_at % u.price_tick).toBe(0);
      expect(u.provider_buys_at % u.price_tick).toBe(0);
    }
  });

  it('is frozen', () => {
    expect(Object.isFrozen(UTILITIES)).toBe(true);
    expect(Object.isFrozen(UTILITIES.biogas)).toBe(true);
  });

  it('names the known utilities when asked for an unknown one', () => {
    expect(() => getUtility('gas')).toThrow(
      'unknown utility "gas" (known: biogas, electricity, heat)',
    );
    expect(getUtility('heat')).toBe(UTILITIES.heat);
  });

  it('formats prices with their unit', () => {
    expect(formatPrice(UTILITIES.biogas.provider_sells_at, UTILITIES.biogas)).toBe('80 tokens/m3');
  });
});
