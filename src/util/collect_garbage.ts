/**
 * One full garbage collection, now. Node gives V8's `gc` only to a process started with
 * --expose-gc; set at run time, the flag exposes it to a context made after it, whose `gc` collects
 * the whole heap (the flag is cleared again: no later context gets one). For what a one-off phase
 * (a model's load) leaves behind, which V8 would otherwise keep until its next full collection —
 * often not before the process ends.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null = null;

export function collectGarbage(): void {
  collect ??= exposedGc();
  collect();
}

function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
