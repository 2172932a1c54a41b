import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../core/negotiation/evaluation.js';
import { negotiate } from '../../../core/negotiation/protocol.js';
import { formatTokens, milli, parseMilli } from '../../../core/units.js';
import { UTILITIES } from '../../../core/utilities.js';
import { bilateral, TABLE1 } from './setup.js';

const biogas = UTILITIES.biogas;
const preferences = {
  seller: { quantity: parseMilli('100'), deadlineStep: Number.POSITIVE_INFINITY },
  buyer: { quantity: parseMilli('150'), deadlineStep: 350 },
};

describe('gains against the provider', () => {
  const outcome = negotiate(bilateral(TABLE1.seller, TABLE1.buyer));
  const result = evaluate(outcome, { utility: biogas, preferences });

  it('reports the seed case: +15/m3 and +45/m3 on 100 m3, escrow 3500 tokens, 50 m3 left', () => {
    expect(formatTokens(result.escrow)).toBe('3500');
    expect(formatTokens(result.seller.tokens)).toBe('3500');
    expect(formatTokens(result.seller.gain)).toBe('1500');
    expect(result.seller.gainPerUnit).toBe(15_000);
    expect(formatTokens(result.buyer.gain)).toBe('4500');
    expect(result.buyer.gainPerUnit).toBe(45_000);
    expect(result.buyer.remaining).toBe(50_000);
    expect(result.seller.remaining).toBe(0);
    expect(result.buyer.stepsToDeadline).toBe(338);
    expect(result.seller.stepsToDeadline).toBeNull();
    expect(result.seller.satisfaction).toBe(1);
    expect(result.buyer.satisfaction).toBeCloseTo(2 / 3, 10);
  });

  it('a deal after the buyer deadline is worth little to it', () => {
    const late = evaluate(outcome, { utility: biogas, preferences, startStep: 345 });
    expect(late.buyer.stepsToDeadline).toBe(-7);
    expect(late.buyer.satisfaction).toBeCloseTo((2 / 3) * 0.1, 10);
  });

  it('without agreement nothing changes hands and everything goes to the provider', () => {
    const none = negotiate(
      bilateral(
        { price: { ip: 80, rp: 70, dl: 5, cr: 1 }, quantity: { ip: 100, rp: 100, dl: 5, cr: 1 } },
        { price: { ip: 20, rp: 30, dl: 5, cr: 1 }, quantity: { ip: 150, rp: 0, dl: 5, cr: 1 } },
      ),
    );
    const r = evaluate(none, { utility: biogas, preferences });
    expect(r.escrow).toBe(0n);
    expect(r.seller).toMatchObject({
      traded: 0,
      gain: 0n,
      remaining: 100_000,
      stepsToDeadline: null,
      satisfaction: 0,
    });
    expect(r.buyer).toMatchObject({ traded: 0, gain: 0n, remaining: 150_000 });
  });

  it('a seller that agrees below the provider buy tariff shows a loss', () => {
    const cheap = negotiate(
      bilateral(
        { price: { ip: 15, rp: 10, dl: 5, cr: 1 }, quantity: { ip: 100, rp: 100, dl: 5, cr: 1 } },
        { price: { ip: 15, rp: 15, dl: 5, cr: 1 }, quantity: { ip: 100, rp: 100, dl: 5, cr: 1 } },
      ),
    );
    const r = evaluate(cheap, { utility: biogas, preferences });
    expect(formatTokens(r.seller.gain)).toBe('-500');
    expect(r.seller.gainPerUnit).toBe(-5_000);
  });

  it('refuses preferences smaller than the traded quantity', () => {
    expect(() =>
      evaluate(outcome, {
        utility: biogas,
        preferences: { ...preferences, seller: { quantity: milli(1), deadlineStep: 1 } },
      }),
    ).toThrow('seller traded 100 but its preferences cover only 0.001');
  });
});
