import { getAddress, TypedDataEncoder, type TypedDataField, Wallet, ZeroHash } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signDigest } from '../../../core/messages/ecdsa.js';
import {
  AGREEMENT_TYPES,
  type Agreement,
  assertDigestSignedBy,
  assertSignedBy,
  DELIVERY_REPORT_TYPES,
  type DeliveryReport,
  digestOf,
  marketDomain,
  negotiationId,
  OFFER_TYPES,
  type Offer,
  offerStruct,
  PROVIDER_ORDER_TYPES,
  recoverSigner,
  SIGNED,
  type SignedKind,
  structHash,
  transcriptHash,
  typedData,
  typedDataDigest,
} from '../../../core/messages/eip712.js';
import { milli, parseMilli } from '../../../core/units.js';

const hexOf = (bytes: Uint8Array) => `0x${Buffer.from(bytes).toString('hex')}`;
const seller = new Wallet(`0x${'11'.repeat(32)}`);
const buyer = new Wallet(`0x${'22'.repeat(32)}`);
const meter = new Wallet(`0x${'33'.repeat(32)}`);
const market = `0x${'44'.repeat(20)}`;
const domain = marketDomain(31337, market);
const nid = negotiationId(seller.address, 'biogas', 1n);

function offers(): Offer[] {
  const list: Offer[] = [];
  let previous = ZeroHash;
  for (const [round, proposer, price] of [
    [0, seller.address, '80'],
    [0, buyer.address, '20'],
    [1, seller.address, '35'],
  ] as const) {
    const offer = offerStruct({
      negotiationId: nid,
      seller: seller.address,
      buyer: buyer.address,
      proposer,
      round,
      quantity: parseMilli('100'),
      price: parseMilli(price),
      previous,
    });
    list.push(offer);
    previous = structHash('Offer', offer);
  }
  return list;
}

function agreement(transcript: string): Agreement {
  return {
    negotiationId: nid,
    seller: seller.address,
    buyer: buyer.address,
    quantity: 100_000n,
    unitPrice: 35n * 10n ** 15n,
    deliveryStart: 1_800_000_000n,
    deliveryEnd: 1_800_003_600n,
    transcriptHash: transcript,
    sellerNonce: 1n,
    sellerDeadline: 1_800_000_600n,
    buyerNonce: 7n,
    buyerDeadline: 1_800_000_600n,
  };
}

describe('EIP-712 types shared with the contracts', () => {
  it('pins the type strings the Solidity TYPEHASHes are built from', () => {
    expect(TypedDataEncoder.from(OFFER_TYPES).encodeType('Offer')).toBe(
      'Offer(bytes32 negotiationId,address seller,address buyer,address proposer,uint32 round,uint256 quantity,uint256 unitPrice,bytes32 previous)',
    );
    expect(TypedDataEncoder.from(AGREEMENT_TYPES).encodeType('Agreement')).toBe(
      'Agreement(bytes32 negotiationId,address seller,address buyer,uint256 quantity,uint256 unitPrice,uint64 deliveryStart,uint64 deliveryEnd,bytes32 transcriptHash,uint256 sellerNonce,uint64 sellerDeadline,uint256 buyerNonce,uint64 buyerDeadline)',
    );
    expect(TypedDataEncoder.from(DELIVERY_REPORT_TYPES).encodeType('DeliveryReport')).toBe(
      'DeliveryReport(bytes32 agreementId,uint256 delivered,uint64 measuredAt,uint64 seq)',
    );
    expect(TypedDataEncoder.from(PROVIDER_ORDER_TYPES).encodeType('ProviderOrder')).toBe(
      'ProviderOrder(address prosumer,uint8 role,uint256 quantity,uint64 deliveryStart,uint64 deliveryEnd,uint256 limitPrice,uint256 nonce,uint64 deadline)',
    );
    expect(domain).toEqual({
      name: 'EIP Utility Market',
      version: '1',
      chainId: 31337n,
      verifyingContract: '0x4444444444444444444444444444444444444444',
    });
  });

  it('an offer, an agreement and a delivery report sign and recover', async () => {
    const [offer] = offers();
    if (offer === undefined) throw new Error('no offer');
    const o = typedData(domain, 'Offer', offer);
    const offerSig = await seller.signTypedData(o.domain, o.types, o.value);
    expect(recoverSigner(domain, 'Offer', offer, offerSig)).toBe(seller.address);

    const terms = agreement(transcriptHash(offers()));
    const a = typedData(domain, 'Agreement', terms);
    const [sellerSig, buyerSig] = await Promise.all([
      seller.signTypedData(a.domain, a.types, a.value),
      buyer.signTypedData(a.domain, a.types, a.value),
    ]);
    expect(() =>
      assertSignedBy(domain, 'Agreement', terms, sellerSig, seller.address),
    ).not.toThrow();
    expect(() => assertSignedBy(domain, 'Agreement', terms, buyerSig, buyer.address)).not.toThrow();
    expect(() => assertSignedBy(domain, 'Agreement', terms, buyerSig, seller.address)).toThrow(
      expect.objectContaining({ code: 'INVALID_SIGNATURE' }),
    );

    const report: DeliveryReport = {
      agreementId: structHash('Agreement', terms),
      delivered: 60_000n,
      measuredAt: 1_800_001_800n,
      seq: 3n,
    };
    const r = typedData(domain, 'DeliveryReport', report);
    const reportSig = await meter.signTypedData(r.domain, r.types, r.value);
    expect(recoverSigner(domain, 'DeliveryReport', report, reportSig)).toBe(meter.address);
    expect(typedDataDigest(domain, 'DeliveryReport', report)).toBe(
      TypedDataEncoder.hash(r.domain, r.types, r.value),
    );
  });

  it('a signature does not carry over to another chain, contract or altered terms', async () => {
    const terms = agreement(ZeroHash);
    const a = typedData(domain, 'Agreement', terms);
    const sig = await seller.signTypedData(a.domain, a.types, a.value);
    const elsewhere = [
      [marketDomain(1, market), terms],
      [marketDomain(31337, `0x${'55'.repeat(20)}`), terms],
      [domain, { ...terms, quantity: terms.quantity + 1n }],
      [domain, { ...terms, sellerNonce: 2n }],
    ] as const;
    for (const [d, t] of elsewhere)
      expect(recoverSigner(d, 'Agreement', t, sig)).not.toBe(seller.address);
  });

  it('refuses malleable (high-s) and malformed signatures', async () => {
    const terms = agreement(ZeroHash);
    const a = typedData(domain, 'Agreement', terms);
    const sig = await seller.signTypedData(a.domain, a.types, a.value);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const r = sig.slice(2, 66);
    const s = BigInt(`0x${sig.slice(66, 130)}`);
    const v = Number.parseInt(sig.slice(130), 16);
    const malleated = `0x${r}${(n - s).toString(16).padStart(64, '0')}${(v === 27 ? 28 : 27).toString(16)}`;
    // Just above n/2 but below 2^255: ethers' Signature.from lets this through, EIP-2 does not.
    const justAboveHalf = `0x${r}${(n / 2n + 1n).toString(16).padStart(64, '0')}1b`;
    for (const bad of [malleated, justAboveHalf, '0x1234', `0x${'00'.repeat(65)}`]) {
      expect(() => recoverSigner(domain, 'Agreement', terms, bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_SIGNATURE' }),
      );
    }
  });

  it('signing the digest gives the signature signTypedData gives', async () => {
    const terms = agreement(ZeroHash);
    const a = typedData(domain, 'Agreement', terms);
    const digest = digestOf(domain, structHash('Agreement', terms));
    expect(digest).toBe(TypedDataEncoder.hash(a.domain, a.types, a.value));
    expect(signDigest(seller, digest)).toBe(await seller.signTypedData(a.domain, a.types, a.value));
    expect(() =>
      assertDigestSignedBy('Agreement', digest, signDigest(buyer, digest), seller.address),
    ).toThrow(expect.objectContaining({ code: 'INVALID_SIGNATURE' }));
  });

  it('the transcript hash commits to every offer in order', () => {
    const list = offers();
    expect(transcriptHash(list)).toBe(structHash('Offer', list[2] as Offer));
    expect(transcriptHash([])).toBe(ZeroHash);
    const [first, second, third] = list as [Offer, Offer, Offer];
    expect(() => transcriptHash([first, third])).toThrow('transcript broken at offer 1');
    expect(() => transcriptHash([second, first, third])).toThrow('transcript broken at offer 0');
    expect(() =>
      transcriptHash([first, { ...second, negotiationId: `0x${'99'.repeat(32)}` }]),
    ).toThrow('transcript mixes negotiations at offer 1');
    const tampered = { ...second, unitPrice: second.unitPrice + 1n };
    expect(() => transcriptHash([first, tampered, third])).toThrow('transcript broken at offer 2');
  });

  it('what an agent agreed is exactly what the contract escrows: quantity x unitPrice', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), fc.integer({ min: 0, max: 1e9 }), (q, p) => {
        const offer = offerStruct({
          negotiationId: nid,
          seller: seller.address,
          buyer: buyer.address,
          proposer: seller.address,
          round: 0,
          quantity: milli(q),
          price: milli(p),
          previous: ZeroHash,
        });
        // (q / 1000 units) x (p / 1000 tokens per unit), in 18-decimal base units, by hand.
        const expected = (BigInt(q) * BigInt(p)).toString() + '0'.repeat(18 - 6);
        return (offer.quantity * offer.unitPrice).toString() === expected.replace(/^0+(?=\d)/, '');
      }),
    );
  });

  it('hashes every struct exactly as ethers does, for any values', () => {
    const word = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hexOf);
    const address = fc
      .uint8Array({ minLength: 20, maxLength: 20 })
      .map((b) => getAddress(hexOf(b)));
    const uint = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
    const arbitrary = (type: string) =>
      type === 'bytes32'
        ? word
        : type === 'address'
          ? address
          : type === 'uint32'
            ? fc.integer({ min: 0, max: 2 ** 32 - 1 })
            : uint(Number(type.slice(4)));
    for (const [kind, types] of Object.entries(SIGNED) as [
      SignedKind,
      Record<string, TypedDataField[]>,
    ][]) {
      const fields = types[kind] ?? [];
      const record = fc.record(Object.fromEntries(fields.map((f) => [f.name, arbitrary(f.type)])));
      fc.assert(
        fc.property(record, (value) => {
          expect(structHash(kind, value as never)).toBe(
            TypedDataEncoder.hashStruct(kind, types, value),
          );
        }),
        { numRuns: 200 },
      );
    }
  });

  it('refuses out-of-range struct values, naming the field', () => {
    const [offer] = offers();
    const bad: [Partial<Offer>, RegExp][] = [
      [{ round: 2 ** 32 }, /^Offer\.round must be a whole number from 0 to 2\^32 - 1$/],
      [{ round: -1 }, /Offer\.round/],
      [{ round: 1.5 }, /Offer\.round/],
      [{ quantity: 1n << 256n }, /Offer\.quantity .* 2\^256 - 1/],
      [{ seller: '0x1234' }, /^Offer\.seller must be a 0x-hex address$/],
      [{ previous: '0xzz' }, /^Offer\.previous must be 32 bytes of 0x-hex$/],
    ];
    for (const [change, why] of bad) {
      expect(() => structHash('Offer', { ...(offer as Offer), ...change })).toThrow(why);
    }
  });

  it('negotiation ids are deterministic and distinct per requester, utility and nonce', () => {
    expect(negotiationId(seller.address, 'biogas', 1n)).toBe(nid);
    expect(
      new Set([
        nid,
        negotiationId(buyer.address, 'biogas', 1n),
        negotiationId(seller.address, 'heat', 1n),
        negotiationId(seller.address, 'biogas', 2n),
      ]).size,
    ).toBe(4);
  });
});
