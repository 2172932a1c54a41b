/** Two NegotiationSessions, seller and buyer, for one negotiation, as tests and benches play them. */
import type { DigestSigner } from '../../core/messages/ecdsa.js';
import type { MarketDomain } from '../../core/messages/eip712.js';
import type { NegotiationSetup } from '../../core/negotiation/protocol.js';
import { UTILITIES } from '../../core/utilities.js';
import { NegotiationSession } from '../../edge/negotiation/session.js';

export interface SessionPairOptions {
  readonly id: string;
  readonly domain: MarketDomain;
  readonly sellerKey: DigestSigner;
  readonly buyerKey: DigestSigner;
}

export function sessionPair(setup: NegotiationSetup, options: SessionPairOptions) {
  const { sellerKey, buyerKey } = options;
  const common = {
    negotiationId: options.id,
    utility: UTILITIES.biogas,
    domain: options.domain,
    deliveryStartS: 1_000n,
    deliveryEndS: 4_600n,
    maxRounds: setup.maxRounds ?? 10_000,
    agreementTtlS: 600,
  };
  return {
    seller: new NegotiationSession(
      { ...common, role: 'seller', spec: setup.seller, counterpart: buyerKey.address },
      sellerKey,
    ),
    buyer: new NegotiationSession(
      { ...common, role: 'buyer', spec: setup.buyer, counterpart: sellerKey.address },
      buyerKey,
    ),
  };
}
