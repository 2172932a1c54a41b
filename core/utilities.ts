/**
 * The utilities traded in the park, as data. Each names its unit, the resolution at which it is
 * metered and traded, and the main provider's tariffs, which are every prosumer's outside option.
 *
 * Tariffs are in tokens per unit. The biogas tariffs are the seed paper's (section 5: the provider
 * sells at 80 and buys at 20 tokens per m3); electricity and heat are illustrative defaults in
 * the same token, in roughly the ratio of European retail and feed-in prices. A park overrides
 * them in its configuration.
 */
import { z } from 'zod';
import { EipError } from './errors.js';
import { formatMilli, type Milli, parseMilli } from './units.js';

export const UTILITY_IDS = ['biogas', 'electricity', 'heat'] as const;
export type UtilityId = (typeof UTILITY_IDS)[number];

const decimal = z.string().transform((text, ctx) => {
  try {
    return parseMilli(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const utilitySchema = z
  .strictObject({
    id: z.enum(UTILITY_IDS),
    name: z.string().min(1),
    unit: z.enum(['m3', 'kWh']),
    /** Smallest tradable quantity step, in units (0.001 m3 = 1 litre, 0.001 kWh = 1 Wh). */
    quantity_tick: decimal,
    /** Smallest price step of an offer, in tokens per unit. */
    price_tick: decimal,
    /** What the main provider charges a prosumer that buys from it, tokens per unit. */
    provider_sells_at: decimal,
    /** What the main provider pays a prosumer that sells to it, tokens per unit. */
    provider_buys_at: decimal,
  })
  .refine((u) => u.quantity_tick > 0 && u.price_tick > 0, 'ticks must be positive')
  .refine(
    (u) => u.provider_buys_at <= u.provider_sells_at,
    'provider must not buy above its sell tariff',
  );

export type Utility = Readonly<z.output<typeof utilitySchema>>;

const UTILITY_DATA: Record<UtilityId, z.input<typeof utilitySchema>> = {
  biogas: {
    id: 'biogas',
    name: 'Biogas / natural gas',
    unit: 'm3',
    quantity_tick: '0.001',
    // Whole tokens per m3: the seed's tariffs and its reported price are whole tokens.
    price_tick: '1',
    provider_sells_at: '80',
    provider_buys_at: '20',
  },
  electricity: {
    id: 'electricity',
    name: 'Electricity',
    unit: 'kWh',
    quantity_tick: '0.001',
    price_tick: '0.01',
    provider_sells_at: '25',
    provider_buys_at: '8',
  },
  heat: {
    id: 'heat',
    name: 'Heat',
    unit: 'kWh',
    quantity_tick: '0.001',
    price_tick: '0.01',
    provider_sells_at: '9',
    provider_buys_at: '3',
  },
};

export const UTILITIES: Readonly<Record<UtilityId, Utility>> = Object.freeze(
  Object.fromEntries(
    UTILITY_IDS.map((id) => [id, Object.freeze(utilitySchema.parse(UTILITY_DATA[id]))]),
  ) as Record<UtilityId, Utility>,
);

export function getUtility(id: string): Utility {
  if (!(UTILITY_IDS as readonly string[]).includes(id)) {
    throw new EipError(
      'UNKNOWN_UTILITY',
      `unknown utility "${id}" (known: ${UTILITY_IDS.join(', ')})`,
      {
        details: { utility: id },
      },
    );
  }
  return UTILITIES[id as UtilityId];
}

/** "80 tokens/m3" */
export function formatPrice(price: Milli, utility: Utility): string {
  return `${formatMilli(price)} tokens/${utility.unit}`;
}
