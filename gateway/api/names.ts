/**
 * The names the API gives accounts (views.ts `NameOf`): a plant's id from the park directory, or
 * `provider` for an account that is the main provider of a utility now. Only records the caller
 * may see carry names, so naming reveals nothing the scope hides: a plant learns the ids of its
 * own counterparts, as their MQTT topics already tell it.
 */
import type { UtilityRecord } from '../indexer/model.js';
import type { ParkDirectory } from '../park.js';
import { PROVIDER_NAME } from '../relay/book.js';
import type { NameOf } from './views.js';

export function parkNames(
  directory: Pick<ParkDirectory, 'plantOf'>,
  utilities: () => readonly Pick<UtilityRecord, 'provider'>[],
): NameOf {
  return (address) => {
    const plant = directory.plantOf(address);
    if (plant !== undefined) return plant;
    const key = address.toLowerCase();
    // The provider is per utility and may change (ProviderChanged): the model knows the latest.
    return utilities().some((u) => u.provider.toLowerCase() === key) ? PROVIDER_NAME : null;
  };
}
