/**
 * Deploys the UtilityToken and one UtilityMarket per utility, with the providers' tariffs taken
 * from core's utility table, and returns the deployment manifest.
 */
import type { ContractTransactionResponse, Signer } from 'ethers';
import { getAddress } from 'ethers';
import UtilityMarketArtifact from '../../contracts/artifacts/UtilityMarket.json' with {
  type: 'json',
};
import { UtilityMarket__factory, UtilityToken__factory } from '../../contracts/types/index.js';
import { EipError } from '../../core/errors.js';
import { unitPriceBaseUnits } from '../../core/units.js';
import { UTILITIES, UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Manifest } from './manifest.js';

/** One hour for the last reports of a provision window to reach the chain. */
export const DEFAULT_GRACE_PERIOD = 3600;

export interface DeployOptions {
  readonly signer: Signer;
  /** Receives the operator and admin roles and the minter role; defaults to the deployer. */
  readonly operator?: string;
  /** The main provider's wallet for every market; defaults to the operator. */
  readonly provider?: string;
  readonly gracePeriod?: number;
  /** Told each step as it completes, for progress output. */
  readonly onStep?: (step: string) => void;
}

async function mined(what: string, tx: ContractTransactionResponse | null) {
  const receipt = await tx?.wait();
  if (receipt?.status !== 1) {
    throw new EipError(
      'IO_ERROR',
      `deploying ${what} failed: transaction reverted or was dropped`,
      {
        retryable: true,
      },
    );
  }
  return receipt;
}

export async function deployMarkets(options: DeployOptions): Promise<Manifest> {
  const { signer } = options;
  const step = options.onStep ?? (() => undefined);
  const deployer = getAddress(await signer.getAddress());
  const operator = getAddress(options.operator ?? deployer);
  const provider = getAddress(options.provider ?? operator);
  const gracePeriod = options.gracePeriod ?? DEFAULT_GRACE_PERIOD;
  if (!Number.isSafeInteger(gracePeriod) || gracePeriod < 0) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `grace period must be whole seconds >= 0, got ${gracePeriod}`,
    );
  }
  const network = await signer.provider?.getNetwork();
  if (!network) throw new EipError('INVALID_ARGUMENT', 'the deploying signer has no provider');

  const token = await new UtilityToken__factory(signer).deploy(operator);
  const tokenReceipt = await mined('UtilityToken', token.deploymentTransaction());
  const tokenAddress = await token.getAddress();
  step(`UtilityToken at ${tokenAddress}`);

  const markets = {} as Record<UtilityId, Manifest['markets'][UtilityId]>;
  for (const id of UTILITY_IDS) {
    const utility = UTILITIES[id];
    const sellsAt = unitPriceBaseUnits(utility.provider_sells_at);
    const buysAt = unitPriceBaseUnits(utility.provider_buys_at);
    const market = await new UtilityMarket__factory(signer).deploy(
      tokenAddress,
      id,
      utility.unit,
      operator,
      provider,
      sellsAt,
      buysAt,
      gracePeriod,
    );
    await mined(`the ${id} market`, market.deploymentTransaction());
    const address = getAddress(await market.getAddress());
    markets[id] = {
      address,
      unit: utility.unit,
      providerSellsAt: sellsAt,
      providerBuysAt: buysAt,
      provider,
      gracePeriod,
    };
    step(`${id} market at ${address}`);
  }

  return {
    version: 1,
    chainId: Number(network.chainId),
    block: tokenReceipt.blockNumber,
    deployer,
    operator,
    compiler: UtilityMarketArtifact.compiler.version,
    deployedAt: new Date().toISOString(),
    token: getAddress(tokenAddress),
    markets,
  };
}
