/**
 * Compile-time only (`tsc -p tsconfig.json`; it has no runtime): what the API's views, the
 * forecast and the sign-in produce fits the shapes the dashboard reads
 * (gateway/dashboard/wire.d.ts). A field
 * renamed, retyped or dropped on the server side fails here, not on a control-room screen.
 */

import type { NegotiationSummary } from '../../gateway/api/scope.js';
import type {
  accountJson,
  agreementJson,
  blockJson,
  deliveryJson,
  settlementJson,
  statusJson,
  txJson,
  utilityJson,
} from '../../gateway/api/views.js';
import type { Principal } from '../../gateway/auth/principal.js';
import type * as Wire from '../../gateway/dashboard/wire.js';
import type { UtilityForecast } from '../../gateway/forecast/history.js';

/** Compiles only when `Served` is assignable to `Read`. */
type Fits<Served extends Read, Read> = [Served, Read];

export type WireChecks = [
  Fits<ReturnType<typeof agreementJson>, Wire.Agreement>,
  Fits<ReturnType<typeof deliveryJson>, Wire.Delivery>,
  Fits<ReturnType<typeof settlementJson>, Wire.Settlement>,
  Fits<ReturnType<typeof accountJson>, Wire.Account>,
  Fits<ReturnType<typeof utilityJson>, Wire.Utility>,
  Fits<ReturnType<typeof blockJson>, Wire.Block>,
  Fits<ReturnType<typeof txJson>, Wire.Transaction>,
  Fits<
    Omit<ReturnType<typeof blockJson>, 'transactions'> & {
      transactions: ReturnType<typeof txJson>[];
    },
    Wire.BlockWithTransactions
  >,
  Fits<ReturnType<typeof statusJson>, Wire.Status>,
  Fits<{ items: NegotiationSummary[]; retainDays: number }, Wire.NegotiationSummaries>,
  Fits<UtilityForecast, Wire.Forecast>,
  // GET /auth/me answers the session's principal with a name to show.
  Fits<Principal & { who: string }, Wire.Session>,
];
