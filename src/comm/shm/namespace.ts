import { readlinkSync } from 'node:fs';

/** "<kind>:[inode]" of this process's Linux namespace of that kind ('' where there is no /proc). */
export function ownNamespace(kind: 'net' | 'pid'): string {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`);
  } catch {
    return '';
  }
}

/** The inode number of this process's pid namespace ('0' where there is no /proc). */
export function pidNamespace(): string {
  return /\[(\d+)\]/.exec(ownNamespace('pid'))?.[1] ?? '0';
}
