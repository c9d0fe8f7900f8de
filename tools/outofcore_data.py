#!/usr/bin/env python3
"""Writes a planted regression set as a 2-D float32 .npy file, block by block (constant memory),
with its column-name sidecar and the teacher (for tools/bench_outofcore and the CI memory test).

  outofcore_data.py OUT.npy --rows N --dim D --hidden K [--seed S] [--noise 0.05]

Teacher: W1 rows Gaussian then unit norm, b1 ~ U(-1, 1), W2 = +-U(0.5, 1.5), b2 = 0.1, sigmoid
units, inputs N(0, I); y = W2 sigmoid(W1 x + b1) + b2 + noise. The teacher goes to OUT.truth.npz.
"""
import argparse
import json
import os

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--noise", type=float, default=0.05)
    p.add_argument("--block", type=int, default=1 << 20)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    d, k = a.dim, a.hidden
    W1 = rng.standard_normal((k, d))
    W1 /= np.linalg.norm(W1, axis=1, keepdims=True)
    b1 = rng.uniform(-1, 1, k)
    W2 = rng.uniform(0.5, 1.5, k) * rng.choice([-1.0, 1.0], k)
    b2 = 0.1
    np.savez(a.out + ".truth.npz", W1=W1, b1=b1, W2=W2, b2=b2)
    header = {"descr": "<f4", "fortran_order": False, "shape": (a.rows, d + 1)}
    tmp = a.out + ".partial"
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        done = 0
        while done < a.rows:
            m = min(a.block, a.rows - done)
            X = rng.standard_normal((m, d), dtype=np.float32)
            H = 1.0 / (1.0 + np.exp(-(X @ W1.T.astype(np.float32) + b1.astype(np.float32))))
            y = H @ W2.astype(np.float32) + np.float32(b2)
            y += np.float32(a.noise) * rng.standard_normal(m, dtype=np.float32)
            block = np.empty((m, d + 1), dtype=np.float32)
            block[:, :d] = X
            block[:, d] = y
            f.write(block.tobytes())
            done += m
    os.replace(tmp, a.out)
    with open(a.out + ".json", "w") as f:
        json.dump({"columns": [f"x{j + 1}" for j in range(d)] + ["y"]}, f)


if __name__ == "__main__":
    main()
