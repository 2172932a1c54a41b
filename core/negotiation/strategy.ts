/**
 * The concession strategy of the seed paper, Eq. 1:
 *
 *   O_t = sigma(psi, t) = ip + (rp - ip) * (t / dl)^(1 / cr)
 *
 * ip is the initial price (first offer), rp the reserve price (last acceptable offer), dl the
 * deadline in time steps and cr the concession rate. cr < 1 gives a Boulware agent (holds out,
 * concedes late), cr = 1 a linear one, cr > 1 a conceder (concedes early). After its deadline an
 * agent stands at rp; whether it then keeps negotiating or breaks off is the protocol's concern.
 */
import { z } from 'zod';
import { EipError } from '../errors.js';

declare const validPsi: unique symbol;

/** Strategy parameters that passed validation; only `psi()` and `parsePsi()` make one. */
export type Psi = Readonly<{ ip: number; rp: number; dl: number; cr: number }> & {
  readonly [validPsi]: true;
};

/**
 * ip and rp are prices in tokens or quantities in units; beyond 1e12 they leave the exact
 * fixed-point range (core/units.ts), and near the float limits rp - ip would overflow.
 */
export const PSI_VALUE_LIMIT = 1e12;

const finite = (name: string) => {
  const message = `${name} must be a finite number between -1e12 and 1e12`;
  return z
    .number({ error: message })
    .refine((v) => Number.isFinite(v) && Math.abs(v) <= PSI_VALUE_LIMIT, { message });
};
const positive = (name: string) => {
  const message = `${name} must be a finite number > 0`;
  return z.number({ error: message }).refine((v) => Number.isFinite(v) && v > 0, { message });
};

export const psiSchema = z.strictObject({
  ip: finite('ip').meta({ description: 'Initial offer: where the agent starts' }),
  rp: finite('rp').meta({ description: 'Reservation: the last offer it will make' }),
  dl: positive('dl').meta({ description: 'Deadline: rounds until the reservation is reached' }),
  cr: positive('cr').meta({
    description: 'Concession rate: below 1 concedes late, above 1 early, 1 linearly',
  }),
});

export type PsiInput = z.input<typeof psiSchema>;

/**
 * Validates psi. `where` names the source (a flag, a config path) so that the message says
 * what is wrong and where: `--seller: cr must be a finite number > 0 (got -1)`.
 */
export function parsePsi(input: unknown, where = 'psi'): Psi {
  const result = psiSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.join('.');
      const got =
        typeof input === 'object' && input !== null && key in input
          ? ` (got ${String((input as Record<string, unknown>)[key])})`
          : '';
      return issue.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} (allowed: ip, rp, dl, cr)`
        : `${issue.message}${got}`;
    });
    throw new EipError('INVALID_PSI', `${where}: ${problems.join('; ')}`, {
      details: { where, problems },
    });
  }
  return Object.freeze(result.data) as Psi;
}

/** Shorthand for code and tests: `psi({ ip: 80, rp: 20, dl: 20, cr: 2 })`. */
export function psi(input: PsiInput): Psi {
  return parsePsi(input);
}

/**
 * The offer at time step t >= 0. Exact at both ends: sigma(psi, 0) === ip and, for every t >= dl,
 * sigma(psi, t) === rp. In between the float result is clamped to [ip, rp]: ip + (rp - ip) * f
 * can overshoot rp by one ulp when f is just below 1.
 */
export function sigma(p: Psi, t: number): number {
  if (!(t >= 0)) {
    throw new EipError('INVALID_ARGUMENT', `time step must be a number >= 0 (got ${t})`);
  }
  if (t >= p.dl) return p.rp;
  const offer = p.ip + (p.rp - p.ip) * (t / p.dl) ** (1 / p.cr);
  return p.ip < p.rp
    ? Math.min(Math.max(offer, p.ip), p.rp)
    : Math.min(Math.max(offer, p.rp), p.ip);
}

export type ConcessionShape = 'constant' | 'boulware' | 'linear' | 'conceder';

export function concessionShape(p: Psi): ConcessionShape {
  if (p.ip === p.rp) return 'constant';
  if (p.cr < 1) return 'boulware';
  return p.cr > 1 ? 'conceder' : 'linear';
}
