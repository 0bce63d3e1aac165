"""This core's single-thread read bandwidth as numpy measures it (a float32 sum over 2 GiB, far beyond
the last-level cache; numpy's sum is vectorised, one thread), beside bench/lib/read_bandwidth.ts's:
bench:generate takes the faster as decode's memory-bandwidth bound. One JSON line, GB/s = 1e9 bytes/s."""
import json, time
import numpy as np

a = np.full(2 ** 29, 1.0, dtype=np.float32)
a.sum()
passes = []
for _ in range(4):
    t0 = time.perf_counter()
    a.sum()
    passes.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
print(json.dumps({"gbPerSec": max(passes), "passes": passes, "bytes": a.nbytes, "how": "numpy float32 sum"}))
