"""Benchmark: numba engine (boundlab.evaluate) against the pure-numpy reference enumerator.

Run:  python benchmarks/bench_engine.py
Prints, for each instance, the best-of-N wall time of each path (after a warm-up call that
compiles or loads the numba kernel), their ratio, and checks that both give the same
numbers. Figures measured on the project machine are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from scipy.special import softmax

from boundlab import TokenMDP, evaluate, families
from boundlab.reference import enumerate_sequences


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def random_chain(V: int, T: int, seed: int = 0) -> TokenMDP:
    """Last-token chain, V = S, dense random pair."""
    rng = np.random.default_rng(seed)
    logits = 1.5 * rng.standard_normal((V, V))
    roll = softmax(logits, axis=1)
    theta = softmax(logits + 0.05 * rng.standard_normal((V, V)), axis=1)
    return TokenMDP.last_token(roll, theta, np.full(V, 1 / V), rng.random(V), T)


def compare(name, mdp, repeat_engine=5, repeat_ref=1):
    evaluate(mdp)  # warm-up (kernel compile / cache load, table preparation)
    t_eng, r = best_of(lambda: evaluate(mdp), repeat_engine)
    t_ref, ref = best_of(lambda: enumerate_sequences(mdp), repeat_ref)
    agree = (np.isclose(r.error, ref.error_ratio_form, rtol=1e-10, atol=1e-16)
             and np.isclose(r.worst_case_error, ref.worst_case_error, rtol=1e-10))
    print(f"{name:<34} engine {t_eng * 1e3:9.2f} ms   reference {t_ref * 1e3:10.1f} ms   "
          f"ratio {t_ref / t_eng:8.1f}x   agree={agree}")
    return t_eng, t_ref


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    compare("tree V=2, T=20 (2^20 sequences)", families.random_tree(T=20, V=2, noise=0.3))
    compare("tree V=3, T=12 (531441 sequences)", families.random_tree(T=12, V=3, noise=0.3))
    compare("markov V=S=32, T=3 (2^20 seq.)", random_chain(32, 3))

    mdp = random_chain(32, 65536)
    t_build = time.perf_counter()
    mdp = random_chain(32, 65536)
    t_build = time.perf_counter() - t_build
    evaluate(mdp)
    t, r = best_of(lambda: evaluate(mdp), 5)
    print(f"{'markov V=S=32, T=65536':<34} engine {t * 1e3:9.2f} ms   (construction "
          f"{t_build * 1e3:.1f} ms; enumeration infeasible: 32^65537 sequences)")
    print(f"   delta={r.delta:.3e} dkl_seq={r.dkl_seq:.4g} worst_case={r.worst_case_error:.3e} "
          f"unified={r.bounds['unified']:.4g}")
    t_first = time.perf_counter()
    mdp2 = families.iid(4096, delta=1e-4)
    r2 = evaluate(mdp2)
    t_first = time.perf_counter() - t_first
    print(f"{'counting automaton, T=4096':<34} build+evaluate {t_first * 1e3:9.1f} ms "
          f"({int(mdp2.n_states[0]):,} count states, one shared table; worst case "
          f"{r2.worst_case_error:.4g})")


if __name__ == "__main__":
    main()
