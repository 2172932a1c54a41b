/**
 * What a learned policy can choose each step (seed section 4.2): wait, trade the whole imbalance
 * or half of it with the provider, or negotiate it with a peer with psi from a grid.
 *
 * Prices on the grid are shares of the provider's spread, so one grid fits every utility:
 * price(x) = buys_at + x * (sells_at - buys_at). A seller opens at x = `open` and concedes to
 * x = `reserve`; a buyer mirrors it (opens at 1 - open, concedes to 1 - reserve), so every offer
 * is at least as good for the agent as the provider's tariff. The seller offers all of its surplus
 * and stands there; the buyer asks for its whole deficit and concedes toward taking whatever the
 * seller has (section 5: Prosumer 1 asks for 150 m3 and settles for Prosumer 0's 100).
 */
import type { Role } from '../negotiation/issues.js';
import type { AgentSpec } from '../negotiation/protocol.js';
import { type Psi, psi } from '../negotiation/strategy.js';
import { type Milli, milli, quantize } from '../units.js';
import type { Utility } from '../utilities.js';
import type { Action } from './policy.js';

export interface GridPsi {
  /** The opening offer, as a share of the spread from the agent's worst tariff. */
  readonly open: number;
  /** The reserve, the same way: what the agent concedes to by its deadline. */
  readonly reserve: number;
  readonly dl: number;
  readonly cr: number;
}

const OPEN = [1, 0.8] as const;
/**
 * No reserve is past the middle of the spread, so any two agents on the grid agree: the seller's
 * last offer is at most the buyer's. With reserves past it, learners that each found toughness
 * paid against a softer opponent met each other in the greedy policy and never agreed (seen in
 * training); the grid's choices now shape the split and the speed, not whether there is a deal.
 */
const RESERVE = [0.3, 0.5] as const;
const DEADLINE = [8, 24] as const;
const RATE = [0.5, 1, 2] as const;

export const PSI_GRID: readonly GridPsi[] = OPEN.flatMap((open) =>
  RESERVE.flatMap((reserve) =>
    DEADLINE.flatMap((dl) => RATE.map((cr) => ({ open, reserve, dl, cr }))),
  ),
);

/**
 * Action 0 waits, 1 trades the whole imbalance with the provider, 2 + k negotiates it with
 * PSI_GRID[k], and the last trades half of it with the provider (the rest to negotiate or keep).
 */
export const WAIT = 0;
export const PROVIDER = 1;
export const PROVIDER_HALF = 2 + PSI_GRID.length;
export const ACTION_COUNT = PROVIDER_HALF + 1;

/** What the action space looks like, for the policy file's check. */
export const ACTION_LAYOUT = `wait,provider,psi${PSI_GRID.length},provider-half`;

export function describeAction(action: number): string {
  if (action === WAIT) return 'wait';
  if (action === PROVIDER) return 'provider';
  if (action === PROVIDER_HALF) return 'provider (half)';
  const g = PSI_GRID[action - 2];
  return g ? `negotiate(open ${g.open}, reserve ${g.reserve}, dl ${g.dl}, cr ${g.cr})` : '?';
}

/**
 * The price psi of a grid point for a role on a utility's tariffs: the same for every quantity,
 * so made (and validated) once per tariff and kept.
 */
const pricePsis = new Map<string, Psi>();

function pricePsi(g: GridPsi, role: Role, utility: Utility): Psi {
  const { provider_buys_at: buys, provider_sells_at: sells, price_tick } = utility;
  const key = `${buys}/${sells}/${price_tick}/${role}/${g.open}/${g.reserve}/${g.dl}/${g.cr}`;
  const known = pricePsis.get(key);
  if (known !== undefined) return known;
  // For the seller a share x is buys + x * spread; for the buyer 1 - x of it: mirrored.
  const at = (share: number) => buys + (role === 'seller' ? share : 1 - share) * (sells - buys);
  // Rounded in the agent's lenient direction, opening and reserve alike: the seller's down, the
  // buyer's up. So two reserves at the middle of a spread off the tick still meet (81/20 tokens:
  // the seller's 50, the buyer's 51; rounded apart, 51 and 50 never met, found by a test).
  const sellerSide = role === 'seller';
  const price = (share: number) =>
    quantize(at(share) / 1000, price_tick, sellerSide ? 'down' : 'up') / 1000;
  const ip = price(g.open);
  const rp = price(g.reserve);
  // A seller's reserve must not be above its opening, a buyer's not below: equal at worst.
  const made = psi(
    sellerSide
      ? { ip, rp: Math.min(rp, ip), dl: g.dl, cr: g.cr }
      : { ip, rp: Math.max(rp, ip), dl: g.dl, cr: g.cr },
  );
  pricePsis.set(key, made);
  return made;
}

/** The spec a grid psi gives `role` for `quantity` of `utility`, on the utility's ticks. */
export function gridSpec(g: GridPsi, role: Role, quantity: Milli, utility: Utility): AgentSpec {
  const { quantity_tick } = utility;
  const sellerSide = role === 'seller';
  const qty = Math.max(quantize(quantity / 1000, quantity_tick, 'down'), quantity_tick) / 1000;
  return {
    name: role,
    // Past its deadline the agent stands at its reserve rather than break off: two agents whose
    // reserves overlap then agree whatever deadlines each chose (with break-off, the one with the
    // shorter deadline leaves before the other has conceded, learned in simulation).
    afterDeadline: 'stand',
    psi: {
      price: pricePsi(g, role, utility),
      quantity: psi({
        ip: qty,
        // The buyer settles, at worst, for the least that can be traded: whatever the seller has.
        rp: sellerSide ? qty : quantity_tick / 1000,
        dl: g.dl,
        cr: 1,
      }),
    },
  };
}

/** The action as the agent carries it out. */
export function actionOf(
  action: number,
  role: Role,
  quantity: Milli,
  utility: Utility,
  why: string,
): Action {
  if (action === WAIT) return { kind: 'wait', why };
  if (action === PROVIDER) return { kind: 'provider', role, quantity };
  if (action === PROVIDER_HALF) {
    const half = quantize(quantity / 2000, utility.quantity_tick, 'down');
    return { kind: 'provider', role, quantity: milli(Math.max(half, utility.quantity_tick)) };
  }
  const g = PSI_GRID[action - 2];
  if (g === undefined) throw new RangeError(`no action ${action}`);
  return { kind: 'negotiate', role, quantity, spec: gridSpec(g, role, quantity, utility) };
}
