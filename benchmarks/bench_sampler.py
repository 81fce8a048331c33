"""Benchmark: tokens per second of the numba Monte Carlo sampler (boundlab.masking.sample).

Run:  python benchmarks/bench_sampler.py
One process, one core; the first call (compile or cache load) is not timed. Figures are
recorded in benchmarks/README.md (target: >= 1e7 tokens per second).
"""

import time

from boundlab import families
from boundlab.masking import sample


def main():
    cases = [("bigram-bf16, V=32, T=1024", families.bigram_bf16(1024), 20_000),
             ("MoE flips, V=8 (S=64), T=1024", families.moe_flip(1024), 20_000),
             ("i.i.d. counting, V=2, T=4096", families.iid(4096, delta=1e-4), 5_000)]
    for name, mdp, n in cases:
        sample(mdp, 100, seed=0)  # warm-up
        best = min(_timed(mdp, n) for _ in range(3))
        print(f"{name:<34} {n * mdp.T / best / 1e6:7.1f} M tokens/s  ({n} sequences, "
              f"{best * 1e3:.0f} ms, uniforms from numpy's PCG64 included)")


def _timed(mdp, n):
    t0 = time.perf_counter()
    sample(mdp, n, seed=1)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
