/**
 * Enrols the park directory's plants on every market: each plant registered as a prosumer, each
 * meter key registered to its plant. Idempotent: what the chain already has is left as it is, so
 * the gateway runs it at every start and a plant added to the directory is enrolled on restart.
 * A meter key the chain gives to another plant is an error naming both: the directory is wrong,
 * or the key was compromised.
 */
import { type ContractTransactionResponse, getAddress, type Signer, ZeroAddress } from 'ethers';
import { UtilityMarket__factory } from '../../contracts/types/index.js';
import { EipError } from '../../core/errors.js';
import { UTILITY_IDS } from '../../core/utilities.js';
import type { ParkDirectory } from '../park.js';
import type { Manifest } from './manifest.js';

export interface EnrolOptions {
  /** The operator; a NonceManager when transactions are sent without waiting for each. */
  readonly signer: Signer;
  readonly manifest: Manifest;
  readonly directory: ParkDirectory;
}

/** Registers what is missing; resolves with how many registrations were sent, once mined. */
export async function enrolPlants(options: EnrolOptions): Promise<number> {
  const markets = UTILITY_IDS.map((utility) => ({
    utility,
    market: UtilityMarket__factory.connect(
      options.manifest.markets[utility].address,
      options.signer,
    ),
  }));
  const plants = Object.entries(options.directory.plants);
  // Prosumers first, mined, then their meters: registerMeter needs the prosumer on chain.
  const prosumers = [];
  for (const { market } of markets) {
    for (const [, entry] of plants) {
      if (!(await market.isProsumer(entry.address))) {
        prosumers.push(await market.registerProsumer(entry.address));
      }
    }
  }
  await minedAll(prosumers);
  const meters = [];
  for (const { utility, market } of markets) {
    for (const [plant, entry] of plants) {
      // One key may serve several meters of the plant: it is registered once.
      for (const key of new Set(Object.values(entry.meters))) {
        const owner = await market.meterOwner(key);
        if (owner === ZeroAddress) {
          meters.push(await market.registerMeter(entry.address, key));
        } else if (getAddress(owner) !== getAddress(entry.address)) {
          throw new EipError(
            'INVALID_ARGUMENT',
            `meter key ${key} of ${plant}: the ${utility} market has it registered to ${owner}, not to ${plant} (${entry.address})`,
          );
        }
      }
    }
  }
  await minedAll(meters);
  return prosumers.length + meters.length;
}

async function minedAll(sent: readonly ContractTransactionResponse[]): Promise<void> {
  await Promise.all(sent.map((tx) => tx.wait()));
}
