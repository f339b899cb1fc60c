"""Shapley values of one row against a reference row (pure maths over a batched function).

A clinician reads a lab bar as "this value, against a normal one": the reference here is a row
of healthy values for the tests that were measured (the tests not measured stay not measured in
both), so a bar is what moving one test from normal to the patient's value did, and the sum of
the bars is f(x) - f(reference). Exact over all subsets for a few tests (2^T rows in one call),
antithetic permutation sampling for more."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable

import numpy as np

MAX_EXACT = 10          # 2^10 = 1,024 rows of the head: ~0.3 s on two cores; 2^12 would take ~1.5 s
PERMUTATIONS = 64       # sampled (32 antithetic pairs): ~1,300 rows for 20 tests


@dataclass(frozen=True)
class Shapley:
    values: np.ndarray        # (T,) each feature's Shapley value; 0 where x equals the reference
    base: float               # f(reference)
    full: float               # f(x) = base + values.sum()
    back_to_reference: np.ndarray   # (T,) f(x) - f(x with feature i at its reference)
    error: np.ndarray         # (T,) sampling standard error (0 when exact)
    exact: bool


def shapley_vs_reference(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, reference: np.ndarray, *,
                         max_exact: int = MAX_EXACT, permutations: int = PERMUTATIONS, seed: int = 0) -> Shapley:
    """Shapley values of row x for f (a matrix (n, T) -> (n,)) against one reference row.

    Features where x and reference agree (both NaN, or equal) are players in no game: value 0.
    With at most `max_exact` players the values are exact (every subset); otherwise sampled over
    `permutations` antithetic orders, and values.sum() == f(x) - f(reference) still holds exactly."""
    x = np.asarray(x, np.float64).ravel()
    ref = np.asarray(reference, np.float64).ravel()
    if x.shape != ref.shape:
        raise ValueError(f"x and reference differ in length: {x.size} vs {ref.size}")
    same = (np.isnan(x) & np.isnan(ref)) | (x == ref)
    players = np.flatnonzero(~same)
    k = len(players)
    values, error = np.zeros(x.size), np.zeros(x.size)
    if k == 0:
        p = float(np.ravel(f(x[None]))[0])
        return Shapley(values, p, p, np.zeros(x.size), error, True)
    if k <= max_exact:
        masks = np.array(list(product((False, True), repeat=k)), bool)         # (2^k, k); row 0 = reference
        out = _evaluate(f, x, ref, players, masks)
        index = masks @ (1 << np.arange(k)[::-1])                               # row of each mask
        lookup = np.empty(len(masks)); lookup[index] = out
        size = masks.sum(1)
        weight = np.array([_w(s, k) for s in range(k)])
        for j in range(k):
            without = ~masks[:, j]
            rows_with = index[without] + (1 << (k - 1 - j))
            values[players[j]] = np.sum(weight[size[without]] * (lookup[rows_with] - lookup[index[without]]))
        full, base = lookup[-1], lookup[0]
        back = np.zeros(x.size)
        for j in range(k):
            back[players[j]] = full - lookup[(1 << k) - 1 - (1 << (k - 1 - j))]
        return Shapley(values, float(base), float(full), back, error, True)
    rng = np.random.default_rng(seed)
    half = [rng.permutation(k) for _ in range(max(1, permutations // 2))]
    orders = half + [o[::-1] for o in half]
    masks = []
    for order in orders:           # a chain from the reference to x, one feature switched on per step
        m = np.zeros(k, bool)
        masks.append(m.copy())
        for j in order:
            m[j] = True
            masks.append(m.copy())
    loo = ~np.eye(k, dtype=bool)   # x with one feature back at its reference
    out = _evaluate(f, x, ref, players, np.vstack([np.array(masks), loo]))
    chains, loo_out = out[:len(masks)].reshape(len(orders), k + 1), out[len(masks):]
    marginals = np.empty((len(orders), k))
    for n, order in enumerate(orders):
        marginals[n, order] = np.diff(chains[n])
    paired = (marginals[:len(half)] + marginals[len(half):]) / 2               # antithetic pairs: independent draws
    values[players] = paired.mean(0)
    error[players] = paired.std(0, ddof=1) / np.sqrt(len(half)) if len(half) > 1 else 0.0
    full, base = float(chains[0, -1]), float(chains[0, 0])
    back = np.zeros(x.size)
    back[players] = full - loo_out
    return Shapley(values, base, full, back, error, False)


def _w(s: int, k: int) -> float:
    """The Shapley weight of a coalition of s players out of k (the feature itself not in it)."""
    from math import factorial
    return factorial(s) * factorial(k - s - 1) / factorial(k)


def _evaluate(f, x, ref, players, masks) -> np.ndarray:
    """f at the rows that take x's value where the mask is on and the reference's elsewhere."""
    rows = np.repeat(ref[None], len(masks), 0)
    sub = rows[:, players]
    sub[masks] = np.broadcast_to(x[players], masks.shape)[masks]
    rows[:, players] = sub
    return np.asarray(f(rows), np.float64).ravel()
