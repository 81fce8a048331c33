"""The layered finite-state token MDP: the one engine every computation runs on.

Definitions follow ``shared/spec/theory.md`` section 1. A response has exactly ``T``
tokens from a vocabulary of size ``V``. At step ``t`` (1-based in the theory, 0-based in
the arrays) the process sits in one of ``S_t`` states; the policies ``pi_roll`` and
``pi_theta`` give a distribution over the next token for every state, and a next-state
table says where each token leads. The reward is paid once, on the ``S_{T+1}`` states of
the final layer, and lies in [0, 1].

The exact autoregressive tree (state = the whole history, ``S_t = P * V**(t-1)``) is the
special case built by :meth:`TokenMDP.tree`. Automata whose state is a sufficient summary
of the history (last token, a token count) describe the same sequence distributions with
far fewer states; :meth:`TokenMDP.to_tree` expands any of them back into the tree, which
is how the tests check them.

Steps that share a table (a time-homogeneous chain) share one *block*, so a Markov chain
of horizon 65536 stores one (S, V) table, not 65536 of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from ._numerics import kl_rows, log_ratio
from .errors import ValidationError

__all__ = ["TokenMDP", "ROW_SUM_TOL", "DEFAULT_MAX_BYTES"]

#: Rows of a policy table must sum to 1 within this absolute tolerance (theory.md: 1e-9).
ROW_SUM_TOL = 1e-9
#: Largest model (in bytes of float64/int64 tables) that the constructors accept.
DEFAULT_MAX_BYTES = 6 * 2**30


@dataclass(frozen=True, eq=False)
class _Block:
    """One step's tables: next state, pi_roll and pi_theta, each of shape (S, V)."""

    nxt: np.ndarray
    roll: np.ndarray
    theta: np.ndarray


def _as_float_table(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} cannot be read as a float array: {exc}") from None
    return arr


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0])


def _validate_policy(arr: np.ndarray, name: str, shape: tuple[int, int]) -> None:
    if arr.shape != shape:
        raise ValidationError(f"{name} has shape {arr.shape}; expected {shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r = _first_bad_row(bad)
        raise ValidationError(f"{name} row {r} contains NaN or inf: {arr[r]}")
    neg = arr < 0
    if neg.any():
        r = _first_bad_row(neg)
        raise ValidationError(f"{name} row {r} has a negative entry: {arr[r]}")
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOL
    if off.any():
        r = int(np.flatnonzero(off)[0])
        raise ValidationError(
            f"{name} row {r} sums to {float(sums[r])!r}, not 1 within {ROW_SUM_TOL:g}"
        )


def _validate_support(roll: np.ndarray, theta: np.ndarray, where: str) -> None:
    bad = (theta > 0) & (roll == 0)
    if bad.any():
        r = _first_bad_row(bad)
        v = int(np.flatnonzero(bad[r])[0])
        raise ValidationError(
            f"pi_theta{where} row {r} puts mass {float(theta[r, v])!r} on token {v} where "
            "pi_roll is 0: importance ratios are undefined (theory.md section 1)"
        )


def _validate_distribution(arr: np.ndarray, name: str, size: int) -> None:
    if arr.shape != (size,):
        raise ValidationError(f"{name} has shape {arr.shape}; expected ({size},)")
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValidationError(f"{name}[{i}] is {float(arr[i])!r}; expected a finite probability")
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValidationError(f"{name}[{i}] = {float(arr[i])!r} is negative")
    if abs(arr.sum() - 1.0) > ROW_SUM_TOL:
        raise ValidationError(f"{name} sums to {float(arr.sum())!r}, not 1 within {ROW_SUM_TOL:g}")


def _validate_reward(reward: np.ndarray, size: int) -> None:
    if reward.shape != (size,):
        raise ValidationError(
            f"reward has shape {reward.shape}; expected ({size},), one value per final state"
        )
    bad = ~np.isfinite(reward) | (reward < 0) | (reward > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"reward[{i}] = {float(reward[i])!r} is outside [0, 1]")


def check_size(n_bytes: float, what: str, max_bytes: float = DEFAULT_MAX_BYTES) -> None:
    """Raise :class:`ValidationError` if a model of ``n_bytes`` would not fit in memory."""
    if n_bytes > max_bytes:
        raise ValidationError(
            f"{what} needs about {n_bytes / 2**30:.1f} GiB (limit {max_bytes / 2**30:.1f} GiB); "
            "use a smaller automaton instead of the full tree, e.g. TokenMDP.markov "
            "(state = last token) or TokenMDP.counting (state = token count)"
        )


def tree_bytes(P: int, V: int, T: int) -> float:
    """Bytes of the three (rows, V) tables of an exact tree with P prompts (float estimate)."""
    rows = P * sum(float(V) ** t for t in range(T))
    return rows * V * 24.0 + P * float(V) ** T * 8.0


class TokenMDP:
    """A layered finite-state token MDP with a rollout and a training policy.

    Parameters
    ----------
    next_states, pi_roll, pi_theta : sequences of length T
        Entry ``t`` (0-based step) has shape ``(S_t, V)``: ``next_states[t][s, v]`` is the
        index of the layer-``t+1`` state reached from state ``s`` by token ``v``;
        ``pi_roll[t][s]`` and ``pi_theta[t][s]`` are probability vectors (rows sum to 1
        within 1e-9). Repeating the *same array objects* at several steps shares storage.
    init : array (S_1,)
        Distribution of the layer-1 states (the prompts), probabilities.
    reward : array (S_{T+1},)
        Terminal reward of each final state, in [0, 1].

    Raises
    ------
    ValidationError
        Wrong shapes, NaN/inf, negative entries, rows not summing to 1 within 1e-9,
        ``pi_theta > 0`` where ``pi_roll = 0``, next-state indices out of range, reward
        outside [0, 1], or a model too large for memory. The message names the array, the
        step and the row. ``pi_theta = 0`` where ``pi_roll > 0`` is allowed: it gives
        ``delta = inf`` and capped bounds.
    """

    def __init__(
        self,
        next_states: Sequence,
        pi_roll: Sequence,
        pi_theta: Sequence,
        init,
        reward,
        *,
        max_bytes: float = DEFAULT_MAX_BYTES,
    ):
        T = len(pi_roll)
        if T < 1:
            raise ValidationError("pi_roll is empty: the horizon T must be at least 1")
        if len(pi_theta) != T or len(next_states) != T:
            raise ValidationError(
                f"pi_roll, pi_theta and next_states must have one table per step; got "
                f"{len(pi_roll)}, {len(pi_theta)} and {len(next_states)}"
            )
        # Share blocks between steps whose three tables are the same objects.
        cache: dict[tuple[int, int, int], int] = {}
        blocks: list[_Block] = []
        layer_block = np.empty(T, dtype=np.int64)
        n_states = np.empty(T + 1, dtype=np.int64)
        V = None
        total = 0.0
        for t in range(T):
            key = (id(next_states[t]), id(pi_roll[t]), id(pi_theta[t]))
            if key in cache:
                b = cache[key]
                layer_block[t] = b
                n_states[t] = blocks[b].roll.shape[0]
                continue
            roll = _as_float_table(pi_roll[t], f"pi_roll[{t}]")
            theta = _as_float_table(pi_theta[t], f"pi_theta[{t}]")
            if roll.ndim != 2:
                raise ValidationError(f"pi_roll[{t}] has shape {roll.shape}; expected (S_t, V)")
            if V is None:
                V = roll.shape[1]
                if V < 1:
                    raise ValidationError("pi_roll[0] has no columns: the vocabulary is empty")
            S = roll.shape[0]
            total += S * V * 24.0
            check_size(total, "this model", max_bytes)
            _validate_policy(roll, f"pi_roll[{t}]", (S, V))
            _validate_policy(theta, f"pi_theta[{t}]", (S, V))
            _validate_support(roll, theta, f"[{t}]")
            nxt = np.asarray(next_states[t])
            if nxt.shape != (S, V) or not np.issubdtype(nxt.dtype, np.integer):
                raise ValidationError(
                    f"next_states[{t}] has shape {nxt.shape} and dtype {nxt.dtype}; "
                    f"expected integers of shape {(S, V)}"
                )
            if (nxt < 0).any():
                r = _first_bad_row(nxt < 0)
                raise ValidationError(f"next_states[{t}] row {r} has a negative index")
            nxt = nxt.astype(np.int64, copy=False)
            cache[key] = len(blocks)
            layer_block[t] = len(blocks)
            blocks.append(_Block(nxt=nxt, roll=roll, theta=theta))
            n_states[t] = S
        # The size of layer t+1 is implied by the next-state tables (and the reward).
        reward = _as_float_table(reward, "reward")
        if reward.ndim != 1:
            raise ValidationError(f"reward has shape {reward.shape}; expected (S_{{T+1}},)")
        for t in range(T - 1):
            hi = int(blocks[layer_block[t]].nxt.max())
            if hi >= n_states[t + 1]:
                raise ValidationError(
                    f"next_states[{t}] points to state {hi} but layer {t + 1} has only "
                    f"{n_states[t + 1]} states"
                )
        hi = int(blocks[layer_block[T - 1]].nxt.max())
        n_states[T] = reward.shape[0]
        if hi >= n_states[T]:
            raise ValidationError(
                f"next_states[{T - 1}] points to final state {hi} but reward has only "
                f"{n_states[T]} entries"
            )
        init = _as_float_table(init, "init")
        _validate_distribution(init, "init", int(n_states[0]))
        _validate_reward(reward, int(n_states[T]))

        self._blocks = blocks
        self._layer_block = layer_block
        self.n_states = n_states
        self.init = init
        self.reward = reward
        self.T = T
        self.V = int(V)
        for arr in (self.n_states, self.init, self.reward, self._layer_block):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def tree(cls, pi_roll, pi_theta, reward, prompt_probs=None, *, max_bytes=DEFAULT_MAX_BYTES):
        """The exact autoregressive tree: state = (prompt, y_1, ..., y_{t-1}).

        Parameters
        ----------
        pi_roll, pi_theta : sequences of T arrays
            Array ``t`` (0-based) has shape ``(P * V**t, V)``; its rows are the contexts
            ``(prompt, y_1, ..., y_t)`` in lexicographic order with the earliest symbol most
            significant, so row ``r`` with token ``v`` leads to row ``r * V + v`` of array
            ``t + 1``.
        reward : array (P * V**T,)
            Reward of every complete (prompt, response), in [0, 1], same ordering.
        prompt_probs : array (P,), optional
            Prompt distribution; uniform by default.

        Raises
        ------
        ValidationError
            As :class:`TokenMDP`; also when the shapes are not those of a tree, or the tree
            is too large for memory (use an automaton instead).
        """
        T = len(pi_roll)
        if T < 1:
            raise ValidationError("pi_roll is empty: the horizon T must be at least 1")
        first = np.asarray(pi_roll[0])
        if first.ndim != 2:
            raise ValidationError(f"pi_roll[0] has shape {first.shape}; expected (P, V)")
        P, V = first.shape
        check_size(tree_bytes(P, V, T), f"a tree with P={P}, V={V}, T={T}", max_bytes)
        nxt = []
        for t in range(T):
            rows = P * V**t
            shape = np.shape(pi_roll[t])
            if shape != (rows, V):
                raise ValidationError(
                    f"pi_roll[{t}] has shape {shape}; a tree with P={P}, V={V} needs "
                    f"({rows}, {V}) (P * V**t rows)"
                )
            nxt.append(np.arange(rows * V, dtype=np.int64).reshape(rows, V))
        if prompt_probs is None:
            prompt_probs = np.full(P, 1.0 / P)
        return cls(nxt, pi_roll, pi_theta, prompt_probs, reward, max_bytes=max_bytes)

    @classmethod
    def markov(cls, next_state, pi_roll, pi_theta, init, reward, T: int):
        """A time-homogeneous chain: the same (S, V) tables at every one of T steps.

        ``next_state[s, v]`` is the state after token ``v`` in state ``s`` (for example
        ``next_state[s, v] = v``: state = last token). ``init`` (S,) and ``reward`` (S,)
        are over the same S states. Storage is O(S V), independent of T.

        Raises
        ------
        ValidationError
            As :class:`TokenMDP`, or if ``T < 1``.
        """
        T = _check_horizon(T)
        nxt = np.asarray(next_state)
        roll = _as_float_table(pi_roll, "pi_roll")
        theta = _as_float_table(pi_theta, "pi_theta")
        return cls([nxt] * T, [roll] * T, [theta] * T, init, reward)

    @classmethod
    def last_token(cls, pi_roll, pi_theta, init, reward, T: int):
        """Markov chain whose state is the last token (S = V); see :meth:`markov`."""
        roll = _as_float_table(pi_roll, "pi_roll")
        if roll.ndim != 2 or roll.shape[0] != roll.shape[1]:
            raise ValidationError(
                f"pi_roll has shape {roll.shape}; state = last token needs a square (V, V) table"
            )
        V = roll.shape[1]
        nxt = np.tile(np.arange(V, dtype=np.int64), (V, 1))
        return cls.markov(nxt, roll, pi_theta, init, reward, T)

    @classmethod
    def counting(cls, p_roll, p_theta, T: int, reward=None, token: int = 0):
        """I.i.d. tokens on the counting automaton: state = number of ``token`` seen so far.

        Every step draws from the fixed distributions ``p_roll`` and ``p_theta`` (shape
        (V,)). The automaton is time-homogeneous with T + 1 states (counts 0..T), one shared
        (T + 1, V) table: at step t only counts 0..t-1 are reachable, and the kernel skips
        the rest, so storage is O(T V) and evaluation O(T^2 V). The count is a sufficient
        statistic of the likelihood ratio when ``p_theta[v] / p_roll[v]`` is the same for
        every ``v != token`` (always true for V = 2), and then D_TV^seq is computed exactly
        (see :func:`boundlab.evaluate`). T = 4096 is exact and cheap.

        ``reward`` is an array (T + 1,) over final counts, or a callable of the count
        array; default ``k / T`` (the fraction of ``token``).
        """
        T = _check_horizon(T)
        p_roll = _as_float_table(p_roll, "p_roll")
        p_theta = _as_float_table(p_theta, "p_theta")
        if p_roll.ndim != 1 or p_theta.shape != p_roll.shape:
            raise ValidationError(
                f"p_roll and p_theta must be vectors of the same length; got {p_roll.shape} "
                f"and {p_theta.shape}"
            )
        V = p_roll.shape[0]
        if not 0 <= token < V:
            raise ValidationError(f"token = {token} is not in the vocabulary 0..{V - 1}")
        S = T + 1
        inc = (np.arange(V) == token).astype(np.int64)
        # min(., T) only keeps the (unreachable) top count inside the table
        nxt = np.minimum(np.arange(S, dtype=np.int64)[:, None] + inc[None, :], T)
        counts = np.arange(S)
        if reward is None:
            reward = counts / T
        elif callable(reward):
            reward = reward(counts)
        init = np.zeros(S)
        init[0] = 1.0
        return cls.markov(nxt, np.broadcast_to(p_roll, (S, V)), np.broadcast_to(p_theta, (S, V)),
                          init, reward, T)

    # ------------------------------------------------------------------ accessors
    def step(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(next_states, pi_roll, pi_theta) tables of step ``t`` (0-based), shape (S_t, V)."""
        if not 0 <= t < self.T:
            raise IndexError(f"step {t} is outside 0..{self.T - 1}")
        b = self._blocks[self._layer_block[t]]
        return b.nxt, b.roll, b.theta

    @property
    def n_blocks(self) -> int:
        """Number of distinct step tables stored (1 for a time-homogeneous chain)."""
        return len(self._blocks)

    @property
    def n_sequences(self) -> int:
        """Number of (layer-1 state, response) pairs: S_1 * V**T (Python int, exact)."""
        return int(self.n_states[0]) * self.V**self.T

    @cached_property
    def is_tree(self) -> bool:
        """True if every (state, token) pair leads to its own next state (a tree)."""
        for t in range(self.T):
            nxt = self.step(t)[0]
            if self.n_states[t + 1] != nxt.size or np.unique(nxt).size != nxt.size:
                return False
        return True

    def with_theta(self, pi_theta: Sequence) -> "TokenMDP":
        """A copy with the same structure, pi_roll and reward but a new pi_theta (per step)."""
        return TokenMDP(
            [self.step(t)[0] for t in range(self.T)],
            [self.step(t)[1] for t in range(self.T)],
            pi_theta,
            self.init,
            self.reward,
        )

    def to_dict(self) -> dict:
        """A JSON-able description (nested lists): the distinct step tables, which table
        each step uses, init and reward. :meth:`from_dict` rebuilds the same model."""
        return {
            "blocks": [[b.nxt.tolist(), b.roll.tolist(), b.theta.tolist()]
                       for b in self._blocks],
            "layer_block": self._layer_block.tolist(),
            "init": self.init.tolist(),
            "reward": self.reward.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TokenMDP":
        """Rebuild a model from :meth:`to_dict` (validated like any other input)."""
        blocks = [tuple(np.asarray(a) for a in b) for b in d["blocks"]]
        steps = [blocks[i] for i in d["layer_block"]]
        return cls([b[0] for b in steps], [b[1] for b in steps], [b[2] for b in steps],
                   d["init"], d["reward"])

    def to_tree(self, *, max_bytes=DEFAULT_MAX_BYTES) -> "TokenMDP":
        """Expand into the exact tree over (layer-1 state, y_1..y_t) with the same law.

        The prompts of the tree are the layer-1 states (with probabilities ``init``).

        Raises
        ------
        ValidationError
            If the tree would be too large for memory.
        """
        S1, V, T = int(self.n_states[0]), self.V, self.T
        check_size(tree_bytes(S1, V, T), f"the tree of this model (P={S1}, V={V}, T={T})",
                   max_bytes)
        state = np.arange(S1, dtype=np.int64)
        roll, theta = [], []
        for t in range(T):
            nxt, r, th = self.step(t)
            roll.append(r[state])
            theta.append(th[state])
            state = nxt[state].reshape(-1)
        return TokenMDP.tree(roll, theta, self.reward[state], prompt_probs=self.init)

    def __repr__(self) -> str:
        kind = "tree" if self.n_blocks == self.T and self.is_tree else "automaton"
        return (
            f"TokenMDP({kind}, T={self.T}, V={self.V}, states/layer "
            f"{int(self.n_states.min())}..{int(self.n_states.max())}, blocks={self.n_blocks})"
        )

    # ------------------------------------------------------------------ kernel inputs
    @cached_property
    def _flat(self) -> dict[str, np.ndarray]:
        """Concatenated block tables and per-row divergences for the numba kernels."""
        starts, offset = [], 0
        for b in self._blocks:
            starts.append(offset)
            offset += b.roll.shape[0]
        nxt = np.concatenate([b.nxt for b in self._blocks])
        roll = np.ascontiguousarray(np.concatenate([b.roll for b in self._blocks]))
        theta = np.ascontiguousarray(np.concatenate([b.theta for b in self._blocks]))
        diff = theta - roll
        logratio = log_ratio(theta, roll)
        kl = kl_rows(roll, theta)  # sum_v roll k3(rho): no cancellation; inf if theta=0<roll
        tv = 0.5 * np.abs(diff).sum(axis=1)
        return {
            "nxt": np.ascontiguousarray(nxt),
            "roll": roll,
            "theta": theta,
            "diff": np.ascontiguousarray(diff),
            "logratio": np.ascontiguousarray(logratio),
            "kl": kl,
            "tv": tv,
            "block_start": np.asarray(starts, dtype=np.int64),
            "layer_block": np.asarray(self._layer_block),
            "n_states": np.asarray(self.n_states),
            "init": np.asarray(self.init),
        }


def _check_horizon(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError(f"T = {T!r}; the horizon must be an integer >= 1")
    return int(T)
