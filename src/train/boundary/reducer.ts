/**
 * The sum kernel training hands to the process groups it creates (ProcessGroupOptions.reducer): the
 * tensor backend's addInto, which the native backend runs at memory bandwidth — the bulk of a large
 * ring all-reduce's CPU time. comm/ knows nothing of tensors, so the hook is passed in from here.
 * The backend is looked up per call: the active one can change after the group is made.
 */
import type { Reducer } from '../../comm/collectives/reduce_ops.js';
import { backend } from '../../tensor/dispatch.js';
import { hostKernels } from '../../tensor/backends/cpu/storage.js';

// Group buffers are host arrays, so the kernels are the cpu backend's host view.
export const tensorReducer: Reducer = (dst, src) => hostKernels(backend()).addInto(dst, src);
