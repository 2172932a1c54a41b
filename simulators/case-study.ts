/**
 * Section 5 of the seed paper (Kröhling et al.): Prosumer 0 has 100 m3 of biogas surplus stored in
 * a 200 m3 gas holder; Prosumer 1 needs 150 m3 before a deadline near time step 350. The provider
 * sells gas at 80 and buys it at 20 tokens per m3. Table 1 gives the psi on price. The paper reports
 * agreement on price at step 11 and on quantity at step 12: 100 m3 at 35 tokens per m3, leaving
 * Prosumer 1 a deficit of 50 m3 with about 340 steps to go.
 */
import { psi } from '../core/negotiation/strategy.js';
import { toMilli } from '../core/units.js';
import { UTILITIES } from '../core/utilities.js';
import { bilateralScenario } from './negotiation/scenario.js';

export const CASE_STUDY = bilateralScenario({
  title: 'Case study (Kröhling et al., section 5): biogas between two prosumers',
  notes: [
    'Prosumer 0 stores its 100 m3 biogas surplus in a 200 m3 gas holder and sells it.',
    'Prosumer 1 has no biogas facility and needs 150 m3 before step 350.',
    'Psi on price from Table 1; on quantity Prosumer 0 does not concede and Prosumer 1 does.',
  ],
  utility: UTILITIES.biogas,
  seller: {
    name: 'Prosumer 0',
    price: psi({ ip: 80, rp: 20, dl: 20, cr: 2 }),
    amount: toMilli(100),
  },
  buyer: {
    name: 'Prosumer 1',
    price: psi({ ip: 20, rp: 80, dl: 20, cr: 0.5 }),
    amount: toMilli(150),
    deadlineStep: 350,
  },
});
