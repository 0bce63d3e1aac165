/**
 * describe/it/test that register each top-level suite and test once per backend of a list, titled
 * "<name> [<backend>]", with that backend selected (setBackend) while it runs. Nested describes and
 * its are node's own: the suite's before hook has selected the backend. per_backend.ts (the cpu
 * backends) and every_backend.ts (every listed backend, GPU included) are the two lists in use.
 */
import { after, before, describe as nodeDescribe, it as nodeIt, test as nodeTest, type TestContext, type TestOptions } from 'node:test';
import type { RegisteredBackend as Backend } from '../../src/tensor/dispatch.js';
import { backend, setBackend } from '../../src/tensor/dispatch.js';

type SuiteFn = () => void;
type TestFn = (t: TestContext) => void | Promise<void>;
type Options = TestOptions;

export interface PerBackendSuites {
  describe(name: string, fnOrOptions: SuiteFn | Options, maybeFn?: SuiteFn): void;
  it(name: string, a?: TestFn | Options, b?: TestFn): void;
  test(name: string, a?: TestFn | Options, b?: TestFn): void;
}

/** The backend a suite or test switches to, and back from. */
function withBackend(name: string): { select: () => void; restore: () => void } {
  let previous = '';
  return {
    select: () => {
      previous = backend().name;
      setBackend(name);
    },
    restore: () => {
      if (previous) setBackend(previous);
    },
  };
}

/** Suites and tests repeated over `backends()` (asked when a top-level suite or test is registered). */
export function suitesOver(backends: () => readonly Backend[]): PerBackendSuites {
  /** Depth of suites being defined (a describe body runs synchronously while registering). */
  let depth = 0;

  const define = (name: string, fn: SuiteFn, options?: Options): void => {
    depth++;
    try {
      if (options) nodeDescribe(name, options, fn);
      else nodeDescribe(name, fn);
    } finally {
      depth--;
    }
  };

  const describe = (name: string, fnOrOptions: SuiteFn | Options, maybeFn?: SuiteFn): void => {
    const fn = (typeof fnOrOptions === 'function' ? fnOrOptions : maybeFn) as SuiteFn;
    const options = typeof fnOrOptions === 'function' ? undefined : fnOrOptions;
    if (depth > 0) return define(name, fn, options);
    for (const b of backends()) {
      const { select, restore } = withBackend(b.name);
      define(`${name} [${b.name}]`, () => {
        before(select);
        after(restore);
        fn();
      }, options);
    }
  };

  const perBackendTest = (register: typeof nodeIt, name: string, a?: TestFn | Options, b?: TestFn): void => {
    const fn = (typeof a === 'function' ? a : b) as TestFn;
    const options = (typeof a === 'function' ? undefined : a) ?? {};
    if (depth > 0) return void register(name, options, fn);
    for (const be of backends()) {
      const { select, restore } = withBackend(be.name);
      register(`${name} [${be.name}]`, options, async (t: TestContext) => {
        select();
        try {
          await fn(t);
        } finally {
          restore();
        }
      });
    }
  };

  return {
    describe,
    it: (name, a, b) => perBackendTest(nodeIt, name, a, b),
    test: (name, a, b) => perBackendTest(nodeTest, name, a, b),
  };
}
