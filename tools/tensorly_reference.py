#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The algorithm of TensorLy's symmetric_parafac_power_iteration, in plain numpy.

TensorLy itself is not packaged for Debian and PyPI is not reachable on our machines, so the
benchmark compares against this stand-in, written from TensorLy's documented algorithm
(tensorly/decomposition/_symmetric_cp.py): for each component, n_repeat starts drawn uniform on
[0, 1)^d from numpy's global random state; each start does n_iteration rounds of `order` (= 3)
updates v <- T(I, v, v)/||T(I, v, v)|| computed as dense mode products; the winner is the start
with the largest *signed* T(v, v, v); it gets n_iteration more rounds; then the tensor is deflated
by building the dense tensor T - lambda v (x) v (x) v.

usage: tensorly_reference.py T.npy RANK OUT.npy [n_repeat] [n_iteration]
Prints "seconds <time of the decomposition alone>" on stdout and writes the d x k factors.
"""
import sys
import time

import numpy as np


def power_step(tensor, v):
    # tl.tenalg.multi_mode_dot(tensor, [v, v], modes=[1, 2]) for a 3-tensor.
    w = np.tensordot(tensor, v, axes=([2], [0]))
    return np.tensordot(w, v, axes=([1], [0]))


def contract(tensor, v):
    return float(power_step(tensor, v) @ v)


def one_component(tensor, n_repeat, n_iteration):
    size = tensor.shape[0]
    best_score, best = None, None
    for i in range(n_repeat):
        v = np.random.random_sample(size)
        for _ in range(n_iteration):
            for _ in range(3):
                v = power_step(tensor, v)
                v = v / np.linalg.norm(v)
        score = contract(tensor, v)
        if i == 0 or score > best_score:
            best_score, best = score, v
    for _ in range(n_iteration):
        for _ in range(3):
            best = power_step(tensor, best)
            best = best / np.linalg.norm(best)
    eigenval = contract(tensor, best)
    deflated = tensor - eigenval * np.einsum("i,j,k->ijk", best, best, best)
    return eigenval, best, deflated


def main():
    tensor = np.load(sys.argv[1])
    rank = int(sys.argv[2])
    n_repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    n_iteration = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    np.random.seed(0)
    start = time.perf_counter()
    factors, weights = [], []
    for _ in range(rank):
        eigenval, v, tensor = one_component(tensor, n_repeat, n_iteration)
        factors.append(v)
        weights.append(eigenval)
    seconds = time.perf_counter() - start
    np.save(sys.argv[3], np.stack(factors, axis=1))
    print("seconds", seconds)
    print("weights", " ".join("%.6g" % w for w in weights))


if __name__ == "__main__":
    main()
