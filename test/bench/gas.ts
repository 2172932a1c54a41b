/**
 * Gas per market operation on a real anvil chain, measured from transaction receipts: it does not
 * depend on the machine's load (only calldata bytes such as timestamps move it by a few gas). Beside the issue's
 * goals, each row is given as a ratio to a plain transfer of the same token measured in the same
 * run.
 */
import type { Agreement } from '../../core/messages/eip712.js';
import { textTable } from '../../core/text-table.js';
import {
  agreementTerms,
  openAgreement,
  type Park,
  QUANTITY,
  reportDelivery,
  send,
  startPark,
  WINDOW,
  warp,
} from '../contracts/park.js';

const BATCH = 20;

interface Row {
  readonly operation: string;
  readonly gas: bigint;
  readonly goal?: bigint;
}

async function gasOf(pending: Promise<{ gasUsed: bigint } | null>): Promise<bigint> {
  const receipt = await pending;
  if (!receipt) throw new Error('transaction was not mined');
  return receipt.gasUsed;
}

async function openMany(park: Park, count: number): Promise<Agreement[]> {
  const opened: Agreement[] = [];
  for (let i = 0; i < count; i++) {
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    opened.push(terms);
  }
  return opened;
}

async function measure(park: Park): Promise<Row[]> {
  const { token, market, seller, buyer } = park;
  const transfer = await gasOf(send(token.connect(seller).transfer(buyer.address, 10n ** 18n)));

  // The first agreement also sets each signer's first nonce word and the market's first balance.
  const first = await agreementTerms(park);
  const openFirst = await gasOf(openAgreement(park, first));
  const [terms] = (await openMany(park, 1)) as [Agreement];
  const open = await gasOf(openAgreement(park, await agreementTerms(park)));

  await warp(park.provider, 60n);
  const reportFirst = await gasOf(reportDelivery(park, terms, park.buyerMeter, 30_000n, 1n));
  await warp(park.provider, 60n);
  const report = await gasOf(reportDelivery(park, terms, park.buyerMeter, 60_000n, 2n));
  await gasOf(reportDelivery(park, first, park.buyerMeter, QUANTITY, 1n));
  const settleFull = await gasOf(send(market.settle(first)));

  const batch = await openMany(park, BATCH);
  await warp(park.provider, 60n);
  for (const agreement of batch)
    await reportDelivery(park, agreement, park.buyerMeter, 50_000n, 1n);
  await warp(park.provider, WINDOW + 3600n);
  const settlePartial = await gasOf(send(market.settle(terms)));
  const settleBatch = await gasOf(send(market.settleBatch(batch)));

  // A little ahead: a provider trade's window may not start before the block it is mined in.
  const start = BigInt((await park.provider.getBlock('latest'))?.timestamp ?? 0) + 5n;
  const buy = await gasOf(
    send(market.connect(buyer).tradeWithProvider(1, QUANTITY, start, start + WINDOW, 10n ** 30n)),
  );
  const sell = await gasOf(
    send(market.connect(seller).tradeWithProvider(0, QUANTITY, start, start + WINDOW, 0n)),
  );

  return [
    { operation: 'ERC-20 transfer of UtilityToken (baseline)', gas: transfer },
    { operation: 'open agreement (2 signatures, escrow)', gas: open, goal: 120_000n },
    {
      operation: 'open agreement, first on a new market (new nonce words, empty escrow)',
      gas: openFirst,
    },
    { operation: 'report delivery, first of an agreement', gas: reportFirst, goal: 50_000n },
    { operation: 'report delivery, later', gas: report, goal: 50_000n },
    { operation: 'settle, partial delivery (pay + refund)', gas: settlePartial, goal: 60_000n },
    { operation: 'settle, full delivery (pay only)', gas: settleFull, goal: 60_000n },
    {
      operation: `batch settle, per agreement (batch of ${BATCH}, partial)`,
      gas: settleBatch / BigInt(BATCH),
      goal: 35_000n,
    },
    { operation: 'provider trade, prosumer buys', gas: buy },
    { operation: 'provider trade, prosumer sells (its first: new escrow counter)', gas: sell },
  ];
}

export async function gasTable(): Promise<string> {
  const park = await startPark();
  try {
    const rows = await measure(park);
    const baseline = rows[0]?.gas ?? 1n;
    return textTable(
      ['operation', 'gas', 'goal', 'vs transfer'],
      rows.map((row) => [
        row.operation,
        row.gas.toLocaleString('en-US'),
        row.goal === undefined
          ? ''
          : `${row.gas <= row.goal ? 'ok' : 'OVER'} <= ${row.goal.toLocaleString('en-US')}`,
        `${(Number(row.gas) / Number(baseline)).toFixed(2)}x`,
      ]),
      ['left', 'right', 'right', 'right'],
    );
  } finally {
    await park.close();
  }
}
