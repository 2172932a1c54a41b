/** What the policy tests share: an observation to vary, and the EipError a call must throw. */
import { expect } from 'vitest';
import { EipError } from '../../core/errors.js';
import type { Observation } from '../../core/policy/policy.js';
import { milli } from '../../core/units.js';
import { UTILITIES } from '../../core/utilities.js';

/** A plant with a 100-unit biogas store half full, nothing flowing, nothing seen: change what matters. */
export function observation(over: Partial<Observation> = {}): Observation {
  return {
    utility: UTILITIES.biogas,
    step: 0,
    net: milli(0),
    busy: false,
    failuresInRow: 0,
    storageLevel: milli(50_000),
    storageCapacity: milli(100_000),
    flow: milli(0),
    stepsToDeadline: null,
    recentPrice: null,
    requestsSeen: { seller: 0, buyer: 0 },
    ...over,
  };
}

/** The error `run` throws; fails the test when it does not. */
export function thrown(run: () => unknown): EipError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(EipError);
    return error as EipError;
  }
  throw new Error('expected it to throw');
}
