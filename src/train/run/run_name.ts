import { rankKey, sharedKey } from '../../comm/store/keys.js';
import { StoreTimeoutError } from '../../comm/store/protocol.js';
import { TimeoutError } from '../../util/errors.js';

/** Rank 0's run folder name, in its own area of the rendezvous store. */
export const RUN_NAME_KEY = rankKey(0, 'run_name');

/** An elastic run's folder name (no member is sure to outlive the others, so none owns it). */
export const SHARED_RUN_NAME_KEY = sharedKey('run_name');

export interface NameStore {
  set(key: string, value: string): Promise<void>;
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
}

/**
 * The run's folder name on this rank. Rank 0 owns the folder: it publishes its name (--name, or the
 * one it drew) in the rendezvous store, and a rank started without --name reads it there, so that
 * by-hand workers write into (one host) or beside (other hosts, same name) rank 0's folder instead of
 * drawing a name of their own and leaving a second, partial folder. A rank given --name keeps it.
 */
export async function agreeRunName(o: { rank: number; name?: string; drawn: () => string; store: NameStore; timeoutMs: number }): Promise<string> {
  if (o.rank === 0) {
    const name = o.name ?? o.drawn();
    await o.store.set(RUN_NAME_KEY, name);
    return name;
  }
  if (o.name !== undefined) return o.name;
  try {
    return new TextDecoder().decode(await o.store.get(RUN_NAME_KEY, o.timeoutMs));
  } catch (err) {
    if (!(err instanceof StoreTimeoutError)) throw err;
    throw new TimeoutError('reading the run name from the rendezvous store', [0], o.timeoutMs, 'rank 0 publishes it after the rendezvous; or pass the same --name to every rank');
  }
}

/**
 * An elastic run's folder name: the first member to ask publishes its name (--name, or one it drew)
 * and every other member, including one that joins later, takes that one unless given --name itself.
 */
export async function sharedRunName(o: { name?: string; drawn: () => string; store: { compareSet(key: string, expected: null, desired: string): Promise<Uint8Array> } }): Promise<string> {
  const published = new TextDecoder().decode(await o.store.compareSet(SHARED_RUN_NAME_KEY, null, o.name ?? o.drawn()));
  return o.name ?? published;
}
