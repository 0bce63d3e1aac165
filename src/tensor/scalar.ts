import { kernelsFor } from './dispatch.js';
import { allocStorage } from './tensor.js';
import type { Storage } from './storage.js';

/**
 * A number a kernel left on the device (a sum of squares for clipping, a norm for a monitor):
 * read when the host asks, so a device that computes asynchronously is not waited on before then.
 */
export class DeviceScalar {
  constructor(private readonly storage: Storage) {}

  read(): Promise<number> {
    return this.storage.read().then((v) => v[0]);
  }
}

/** Σ x² over a storage (float64 accumulation), as a device value. */
export function sumOfSquares(x: Storage): DeviceScalar {
  const out = allocStorage('float64', 1, x.device);
  kernelsFor(x).sumSquares(x.buffer, 1, out.buffer);
  return new DeviceScalar(out);
}
