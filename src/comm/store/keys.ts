/**
 * Who may write which rendezvous-store key. A rank may write only its own keys and the keys the
 * protocol shares; anything else is refused with a message naming the key, so one faulty or hostile
 * member cannot, say, overwrite another rank's data address and take its traffic.
 *
 *   smolcluster/addr/<r>          rank r's data address (rendezvous.ts)
 *   smolcluster/rank/<r>/...      anything else that belongs to rank r (its heartbeat, its committed step)
 *   smolcluster/shared/...        keys every rank writes (counters, agreed membership epochs)
 *
 * Reading is open to every authenticated member.
 */
export const ADDRESS_PREFIX = 'smolcluster/addr/';
export const RANK_PREFIX = 'smolcluster/rank/';
export const SHARED_PREFIX = 'smolcluster/shared/';

/** rank r's own area of the store: `smolcluster/rank/<r>/<name>`. */
export function rankKey(rank: number, name: string): string {
  return `${RANK_PREFIX}${rank}/${name}`;
}

export function sharedKey(name: string): string {
  return `${SHARED_PREFIX}${name}`;
}

/** Why `rank` may not write `key`, or null when it may. */
export function writeRefusal(key: string, rank: number): string | null {
  if (key.startsWith(SHARED_PREFIX) && key.length > SHARED_PREFIX.length) return null;
  const owner = ownerOf(key);
  if (owner === null) return `"${key}" is not a key of the protocol (own keys: ${RANK_PREFIX}<rank>/..., shared: ${SHARED_PREFIX}...)`;
  return owner === rank ? null : `"${key}" belongs to rank ${owner}, not to rank ${rank}`;
}

/** The rank a key belongs to, or null for a key outside the ranks' areas. */
function ownerOf(key: string): number | null {
  if (key.startsWith(ADDRESS_PREFIX)) return rankOf(key.slice(ADDRESS_PREFIX.length), false);
  if (key.startsWith(RANK_PREFIX)) return rankOf(key.slice(RANK_PREFIX.length), true);
  return null;
}

function rankOf(rest: string, needsName: boolean): number | null {
  const slash = rest.indexOf('/');
  const digits = slash < 0 ? rest : rest.slice(0, slash);
  if (!/^(0|[1-9]\d{0,8})$/.test(digits)) return null;
  if (needsName ? slash < 0 || slash === rest.length - 1 : slash >= 0) return null;
  return Number(digits);
}
