/** Another plant's request to negotiate, as it arrives from the park broker, for tests. */
import { randomBytes } from 'node:crypto';
import { Wallet } from 'ethers';
import { encodePayload, topic } from '../../../core/messages/topics.js';
import type { Role } from '../../../core/negotiation/issues.js';

/** The topic and payload of `prosumer`'s request for 5 m3 of biogas, answerable until `respondByMs`. */
export function biogasRequest(
  prosumer: string,
  role: Role,
  respondByMs = Date.now() + 60_000,
): [string, string] {
  const now = Date.now();
  return [
    topic('negotiationRequest', { utility: 'biogas', prosumer }),
    encodePayload('negotiationRequest', {
      negotiation_id: `0x${randomBytes(32).toString('hex')}`,
      utility: 'biogas',
      prosumer,
      address: Wallet.createRandom().address,
      role,
      quantity_milli: 5000,
      delivery_start_ms: now,
      delivery_end_ms: now + 3_600_000,
      respond_by_ms: respondByMs,
    }),
  ];
}
