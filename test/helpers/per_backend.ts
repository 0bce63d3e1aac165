/**
 * node:test's describe/it/test, run once per backend of the conformance list
 * (test/tensor/backends/list.ts): a test file imports these instead of node:test's and each of its
 * top-level suites and tests is registered once per backend, titled "<name> [<backend>]", with that
 * backend selected while it runs. Nested describes and its inside a suite are node's own (the
 * suite's before hook has selected the backend). float64 tensors run on the backend registered for
 * float64 on the device (js on the cpu), whatever is selected. These tests read values
 * synchronously, so they run on the listed backends of the cpu device (list.ts says why and where
 * a GPU backend is checked instead).
 */
import { after, before, describe as nodeDescribe, it as nodeIt, test as nodeTest, type TestContext, type TestOptions } from 'node:test';
import { backend, setBackend } from '../../src/tensor/dispatch.js';
import { cpuBackendList } from '../tensor/backends/list.js';

type SuiteFn = () => void;
type TestFn = (t: TestContext) => void | Promise<void>;
type Options = TestOptions;

/** Depth of suites being defined (a describe body runs synchronously while registering). */
let depth = 0;

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

function define(name: string, fn: SuiteFn, options?: Options): void {
  depth++;
  try {
    if (options) nodeDescribe(name, options, fn);
    else nodeDescribe(name, fn);
  } finally {
    depth--;
  }
}

export function describe(name: string, fnOrOptions: SuiteFn | Options, maybeFn?: SuiteFn): void {
  const fn = (typeof fnOrOptions === 'function' ? fnOrOptions : maybeFn) as SuiteFn;
  const options = typeof fnOrOptions === 'function' ? undefined : fnOrOptions;
  if (depth > 0) return define(name, fn, options);
  for (const b of cpuBackendList()) {
    const { select, restore } = withBackend(b.name);
    define(`${name} [${b.name}]`, () => {
      before(select);
      after(restore);
      fn();
    }, options);
  }
}

function perBackendTest(register: typeof nodeIt, name: string, a?: TestFn | Options, b?: TestFn): void {
  const fn = (typeof a === 'function' ? a : b) as TestFn;
  const options = (typeof a === 'function' ? undefined : a) ?? {};
  if (depth > 0) return void register(name, options, fn);
  for (const be of cpuBackendList()) {
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
}

export function it(name: string, a?: TestFn | Options, b?: TestFn): void {
  perBackendTest(nodeIt, name, a, b);
}

export function test(name: string, a?: TestFn | Options, b?: TestFn): void {
  perBackendTest(nodeTest, name, a, b);
}
