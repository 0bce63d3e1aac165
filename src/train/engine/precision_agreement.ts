/**
 * Every rank of a cluster computes in one precision. Under `--precision auto` rank 0 decides (its
 * CPU's bf16 instructions and its measurement, train/engine/precision_auto.ts) and publishes the choice,
 * with why, in its area of the rendezvous store; every other rank takes it from there, whatever its
 * own CPU would have chosen. Rank 0 never hands a rank a precision its device cannot compute in:
 * every other rank first publishes whether its device runs bf16, and one that does not (a GPU rank)
 * makes the choice fp32. An elastic run has no rank sure to outlive the others: the first member
 * to ask publishes its choice, and every member, a later one too, takes the published one.
 * (fp32 and bf16 need no agreement: the cluster's signature already refuses a peer that asked for another.)
 */
import { rankKey, sharedKey } from '../../comm/store/keys.js';
import { StoreTimeoutError } from '../../comm/store/protocol.js';
import type { TrainConfig } from '../run/config.js';
import { settlePrecision } from './precision.js';
import type { AutoPrecision } from './precision_auto.js';
import { resolveAutoPrecision } from './precision_auto.js';
import { supportsPrecision } from '../../tensor/precision_support.js';
import { CPU } from '../../tensor/storage.js';
import { TimeoutError } from '../../util/errors.js';
import type { NameStore } from '../run/run_name.js';

export const PRECISION_KEY = rankKey(0, 'precision');
/** Where rank r says whether the device it trains on computes in bf16. */
export const deviceBf16Key = (rank: number): string => rankKey(rank, 'device-bf16');
export const SHARED_PRECISION_KEY = sharedKey('precision');

const quiet = (): void => {};

type CompareSet = { compareSet(key: string, expected: null, desired: string): Promise<Uint8Array> };

/**
 * Resolves `config.precision` when it is auto: rank 0 decides and publishes, the others read rank 0's
 * choice. Rank 0 publishes only where nothing is published yet: a rank 0 restarted under a store
 * that outlived it (ps recovery) keeps the run's first choice rather than measuring a new one.
 */
export async function agreePrecision(o: { rank: number; config: TrainConfig; store: NameStore & CompareSet; timeoutMs: number; worldSize?: number }): Promise<void> {
  if (o.config.precision !== 'auto') return;
  const device = o.config.device ?? CPU;
  if (o.rank === 0) {
    const mine = JSON.stringify(await runnableByEveryRank(resolveAutoPrecision(device), o.store, o.worldSize ?? 1, o.timeoutMs));
    const published = await o.store.compareSet(PRECISION_KEY, null, mine);
    const kept = new TextDecoder().decode(published) !== mine;
    settlePrecision(o.config, parseChoice(published, 'rank 0'), kept ? (l) => process.stderr.write(`smolcluster: ${l}; rank 0's choice before its restart, kept\n`) : undefined);
    return;
  }
  await o.store.set(deviceBf16Key(o.rank), JSON.stringify({ device, bf16: supportsPrecision(device, 'bf16') }));
  let published: Uint8Array;
  try {
    published = await o.store.get(PRECISION_KEY, o.timeoutMs);
  } catch (err) {
    if (!(err instanceof StoreTimeoutError)) throw err;
    throw new TimeoutError('reading --precision auto\'s choice from the rendezvous store', [0], o.timeoutMs, 'rank 0 decides and publishes it after the rendezvous; or pass --precision fp32 or bf16 to every rank');
  }
  settlePrecision(o.config, parseChoice(published, 'rank 0'), quiet);
}

/** Rank 0's choice, or fp32 when another rank's device cannot compute in bf16 (the first such rank named). */
export async function runnableByEveryRank(choice: AutoPrecision, store: NameStore, worldSize: number, timeoutMs: number): Promise<AutoPrecision> {
  if (choice.precision !== 'bf16') return choice;
  for (let r = 1; r < worldSize; r++) {
    let said: { device: string; bf16: boolean };
    try {
      said = JSON.parse(new TextDecoder().decode(await store.get(deviceBf16Key(r), timeoutMs))) as typeof said;
    } catch (err) {
      if (!(err instanceof StoreTimeoutError)) throw err;
      throw new TimeoutError('reading whether each rank\'s device computes in bf16 (--precision auto)', [r], timeoutMs, 'or pass --precision fp32 or bf16 to every rank');
    }
    if (!said.bf16) return { ...choice, precision: 'fp32', reason: `rank ${r} trains on ${said.device}, which computes in fp32 only (rank 0 alone would choose bf16: ${choice.reason})` };
  }
  return choice;
}

/** An elastic run's auto: the first member's choice (this member's own when it is the first). */
export async function sharedPrecision(o: { config: TrainConfig; store: CompareSet }): Promise<void> {
  if (o.config.precision !== 'auto') return;
  const mine = JSON.stringify(resolveAutoPrecision(o.config.device ?? CPU));
  const published = await o.store.compareSet(SHARED_PRECISION_KEY, null, mine);
  const first = new TextDecoder().decode(published) === mine;
  settlePrecision(o.config, parseChoice(published, 'the first member'), first ? undefined : quiet);
}

function parseChoice(bytes: Uint8Array, from: string): AutoPrecision {
  const text = new TextDecoder().decode(bytes);
  let choice: AutoPrecision;
  try {
    choice = JSON.parse(text) as AutoPrecision;
  } catch {
    throw new Error(`--precision auto: ${from} published ${JSON.stringify(text.slice(0, 80))}, not a choice`);
  }
  if (choice?.precision !== 'fp32' && choice?.precision !== 'bf16') throw new Error(`--precision auto: ${from} published precision ${JSON.stringify(choice?.precision)}, expected fp32 or bf16`);
  return choice;
}
