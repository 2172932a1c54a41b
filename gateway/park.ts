/**
 * The park's directory: each plant's id (its MQTT user name and topic level), the Ethereum
 * address it signs agreements with, and the keys of its meters that sign delivery reports. The
 * operator enrols plants here; the gateway registers them on every market at start and uses the
 * directory to tell whose agreement or report a message is, and to whom a status goes.
 */
import { getAddress } from 'ethers';
import { z } from 'zod';
import { EipError } from '../core/errors.js';
import { address, id } from '../core/messages/schemas.js';
import { PROVIDER_NAME } from './relay/book.js';

export const plantSchema = z.strictObject({
  address: address.meta({ description: "The plant's signing address (its edge agent's key)" }),
  meters: z.record(id, address).default({}).meta({
    description: 'Meter id -> address of the key that signs its delivery reports',
  }),
});

export const parkSchema = z.record(id, plantSchema).meta({
  description: 'Plants of the park by id: the MQTT user name of their edge agent',
});

export type ParkPlants = z.output<typeof parkSchema>;

export class ParkDirectory {
  private readonly idByAddress = new Map<string, string>();

  constructor(readonly plants: ParkPlants) {
    // A key may sign for several meters of one plant (an edge with one metering key), never
    // for two plants, nor be a plant's own trading key.
    const keyOwner = new Map<string, string>();
    for (const [plant, entry] of Object.entries(plants)) {
      if (plant === PROVIDER_NAME) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `"${PROVIDER_NAME}" names the main provider in agreements: a plant may not take it`,
        );
      }
      const key = entry.address.toLowerCase();
      const taken = this.idByAddress.get(key);
      if (taken) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `plants ${taken} and ${plant} have the same address ${entry.address}`,
        );
      }
      this.idByAddress.set(key, plant);
    }
    for (const [plant, entry] of Object.entries(plants)) {
      for (const [meter, meterKey] of Object.entries(entry.meters)) {
        const key = meterKey.toLowerCase();
        const owner = this.idByAddress.get(key) ?? keyOwner.get(key) ?? plant;
        if (owner !== plant || this.idByAddress.has(key)) {
          throw new EipError(
            'INVALID_ARGUMENT',
            `meter ${plant}.${meter}: key ${meterKey} is already ${this.idByAddress.has(key) ? 'the trading address' : 'a meter key'} of ${owner}`,
          );
        }
        keyOwner.set(key, plant);
      }
    }
  }

  /** The plant that signs with `account`, or undefined. */
  plantOf(account: string): string | undefined {
    return this.idByAddress.get(account.toLowerCase());
  }

  addressOf(plant: string): string | undefined {
    const entry = this.plants[plant];
    return entry && getAddress(entry.address);
  }

  /** The address of the key that signs `plant`'s meter `meter`'s reports, or undefined. */
  meterKey(plant: string, meter: string): string | undefined {
    return this.plants[plant]?.meters[meter];
  }
}
