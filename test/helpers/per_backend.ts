/**
 * node:test's describe/it/test, run once per backend of the conformance list
 * (test/tensor/backends/list.ts): a test file imports these instead of node:test's and each of its
 * top-level suites and tests is registered once per backend, titled "<name> [<backend>]", with that
 * backend selected while it runs. Nested describes and its inside a suite are node's own (the
 * suite's before hook has selected the backend). float64 tensors run on the backend registered for
 * float64 on the device (js on the cpu), whatever is selected. These tests read values
 * synchronously, so they run on the listed backends of the cpu device; the op suite, which reads
 * with await, runs on every listed backend through every_backend.ts.
 */
import { cpuBackendList } from '../tensor/backends/list.js';
import { suitesOver } from './suites_over.js';

export const { describe, it, test } = suitesOver(cpuBackendList);
