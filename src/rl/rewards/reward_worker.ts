/**
 * The worker thread of worker_host.ts: a reward function away from the main thread — a user's module
 * (imported, its function picked) or the format reward's regular expression — answering each scoring
 * request with the function's value or its error's message. A hanging call (an endless loop, a
 * regex's catastrophic backtracking) blocks only this thread, which the main thread terminates on
 * its timeout.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

export type WorkerSetup = { kind: 'module'; file: string; exportName?: string } | { kind: 'regex'; source: string; flags: string };

export type WorkerRequest = { id: number; prompt: string; completion: string; row: unknown };

export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'load-error'; message: string }
  | { kind: 'value'; id: number; value: number }
  | { kind: 'error'; id: number; message: string };

type ScoreFn = (prompt: string, completion: string, row: unknown) => unknown;

/** The module's reward function: the named export, else the default, else its only exported function. */
function pick(mod: Record<string, unknown>, file: string, exportName?: string): ScoreFn {
  if (exportName !== undefined) {
    if (typeof mod[exportName] !== 'function') throw new Error(`${file} exports no function named "${exportName}" (it exports: ${Object.keys(mod).join(', ') || 'nothing'})`);
    return mod[exportName] as ScoreFn;
  }
  if (typeof mod.default === 'function') return mod.default as ScoreFn;
  const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
  if (fns.length === 1) return mod[fns[0]] as ScoreFn;
  throw new Error(`${file} has no default export that is a function${fns.length > 1 ? ` and several named ones (${fns.join(', ')}): name one` : ' and no exported function'}`);
}

/** The format reward: 1 when the completion matches, else 0. */
function matcher(source: string, flags: string): ScoreFn {
  const re = new RegExp(source, flags);
  return (_prompt, completion) => (re.test(completion) ? 1 : 0);
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : `threw ${String(err)}`;
}

async function main(): Promise<void> {
  const port = parentPort!;
  const setup = workerData as WorkerSetup;
  let fn: ScoreFn;
  try {
    fn = setup.kind === 'regex' ? matcher(setup.source, setup.flags) : pick((await import(pathToFileURL(setup.file).href)) as Record<string, unknown>, setup.file, setup.exportName);
  } catch (err) {
    port.postMessage({ kind: 'load-error', message: describe(err) } satisfies WorkerReply);
    return;
  }
  port.on('message', (req: WorkerRequest) => {
    void (async () => {
      try {
        const value = await fn(req.prompt, req.completion, req.row);
        const reply: WorkerReply = typeof value === 'number'
          ? { kind: 'value', id: req.id, value }
          : { kind: 'error', id: req.id, message: `returned ${value === null ? 'null' : typeof value} (${String(value).slice(0, 40)}), not a number` };
        port.postMessage(reply);
      } catch (err) {
        port.postMessage({ kind: 'error', id: req.id, message: describe(err) } satisfies WorkerReply);
      }
    })();
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerReply);
}

void main();
