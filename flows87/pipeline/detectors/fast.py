"""ECOD, COPOD and HBOS training scores, computed as PyOD computes them but in whole-column
numpy operations.

On 500k accounts x 60 features PyOD's ECOD and COPOD take about 10 s each (each sorts every
column twice and walks the ties in a compiled loop; COPOD repeats ECOD's work), HBOS about 3 s.
Both ECOD and COPOD only need each value's empirical tail probabilities, which one sort per
column gives, once for both.
The scores are PyOD's `decision_scores_` (the training scores the ensemble reads), value for
value; tests/test_detectors.py checks them against PyOD. With 500k accounts they take about
2.5 s (ECOD and COPOD together) and 1 s (HBOS) instead of 23 s.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class Tails:
    """-log of each value's left and right empirical tail probability, one row per feature
    (PyOD's U_l and U_r transposed), and each column's skew sign (PyOD's sign(skew))."""

    left: np.ndarray
    right: np.ndarray
    skew_sign: np.ndarray


def tails(x: np.ndarray) -> Tails:
    """PyOD's -log `column_ecdf(X)` and -log `column_ecdf(-X)`, from one sort per column.

    PyOD gives the i-th smallest value the probability linspace(1/n, 1, n)[i] and tied values
    that of the last of them (the left tail); for -X the same, so the right tail of a value is
    the probability at index n - 1 - (index of the first of its ties). A stable sort: feature
    columns hold long runs of ties (zeros), on which numpy's default quicksort is four times
    slower.
    """
    n, d = x.shape
    prob = np.linspace(np.ones(1) / n, np.ones(1), n)[:, 0]  # as PyOD builds it
    neg_log = -1 * np.log(prob)  # elementwise as PyOD's -1 * np.log(probabilities)
    rows = np.ascontiguousarray(x.T)  # one row per feature: the sorts read contiguous memory
    left, right = np.empty((d, n)), np.empty((d, n))

    def column(j: int) -> None:
        order = np.argsort(rows[j], kind="stable")
        s = rows[j][order]
        new = np.empty(n, dtype=bool)  # the first of a run of ties
        new[0] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:] - 1, n - 1)
        run = np.cumsum(new) - 1  # each sorted value's run of ties
        left[j, order] = neg_log[ends[run]]
        right[j, order] = neg_log[n - 1 - starts[run]]

    # numpy sorts without the GIL: two threads sort two columns at a time
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        list(pool.map(column, range(d)))
    return Tails(left, right, _skew_sign(x))


def _skewed(t: Tails) -> np.ndarray:
    """PyOD's `U_l * -1 * sign(skew - 1) + U_r * sign(skew + 1)`, the same operations in the
    same order, in place where PyOD makes a temporary."""
    s = t.skew_sign[:, None]
    out = t.left * -1
    out *= np.sign(s - 1)
    out += t.right * np.sign(s + 1)
    return out


def ecod_scores(t: Tails) -> np.ndarray:
    """PyOD ECOD's decision_scores_ (the training scores)."""
    o = np.maximum(t.left, t.right)
    np.maximum(_skewed(t), o, out=o)
    return row_sums(o)


def copod_scores(t: Tails) -> np.ndarray:
    """PyOD COPOD's decision_scores_ (the training scores)."""
    o = np.add(t.left, t.right)
    o /= 2
    np.maximum(_skewed(t), o, out=o)
    return row_sums(o)


def row_sums(by_feature: np.ndarray) -> np.ndarray:
    """Each account's sum over its features, given one row per feature: the sums numpy's
    `sum(axis=1)` gives on PyOD's one-row-per-account array, to the bit.

    numpy adds a contiguous row pairwise (8 running sums, then their pairs, blocks of at most
    128 split in halves); doing the same over whole feature rows saves transposing two
    (accounts x features) arrays, about 2 s on 500k x 68 (tests/test_detectors.py compares
    with PyOD, so a numpy that sums otherwise fails there).
    """
    return _pairwise(by_feature, 0, by_feature.shape[0])


def _pairwise(rows: np.ndarray, lo: int, hi: int) -> np.ndarray:
    n = hi - lo
    if n < 8:
        res = np.full(rows.shape[1], -0.0)
        for i in range(lo, hi):
            res += rows[i]
        return res
    if n <= 128:
        r = rows[lo : lo + 8].copy()
        i = 8
        while i < n - n % 8:
            r += rows[lo + i : lo + i + 8]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for j in range(lo + i, hi):
            res += rows[j]
        return res
    half = n // 2
    half -= half % 8
    return _pairwise(rows, lo, lo + half) + _pairwise(rows, lo + half, hi)


def hbos_scores(
    x: np.ndarray, n_bins: int = 10, alpha: float = 0.1, tol: float = 0.5
) -> np.ndarray:
    """PyOD HBOS's decision_scores_ with a fixed number of bins.

    On the training data every value lies within its column's histogram: np.digitize (right)
    puts the column minimum in bin 0, which PyOD scores as the first bin (its distance to the
    edge, 0, is within `tol`), and every other value in the bin it closes.
    """
    return hbos_score(hbos_fit(x, n_bins, alpha, tol), x)


# Fitted once, scored in parts: the partitioned path (one task per account partition) scores its
# accounts against the whole population's columns, and gets each account's training score.


@dataclass
class FittedTails:
    """The empirical distribution ECOD and COPOD score against: each column's distinct values,
    sorted, and how many population values lie below each (`below[k]`, with `below[-1]` = n).
    What the sorted columns tell, in a fifth of their size (count features have few distinct
    values): at 1.9M accounts x 68 features the sorted columns were 1 GB in every task."""

    values: list[np.ndarray]
    below: list[np.ndarray]
    skew_sign: np.ndarray
    n: int


def fit_tails(x: np.ndarray) -> FittedTails:
    rows = np.ascontiguousarray(x.T)  # a view of a matrix with one contiguous column a feature
    values, below = [], []
    for j in range(rows.shape[0]):
        s = np.sort(rows[j], kind="stable")  # see `tails`
        new = np.empty(s.size, dtype=bool)
        new[:1] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        values.append(s[starts])
        below.append(np.append(starts, s.size))
    return FittedTails(values, below, _skew_sign(x), int(x.shape[0]))


def tails_of(fitted: FittedTails, x: np.ndarray) -> Tails:
    """`tails` of rows `x` against the fitted population: for rows of the population, the very
    values `tails(population)` gives them (the last of a value's ties for the left tail, the
    first for the right, as PyOD ranks them)."""
    n = fitted.n
    prob = np.linspace(np.ones(1) / n, np.ones(1), n)[:, 0]
    neg_log = -1 * np.log(prob)
    m, d = x.shape
    left, right = np.empty((d, m)), np.empty((d, m))

    def column(j: int) -> None:
        values, below = fitted.values[j], fitted.below[j]
        order = np.argsort(x[:, j], kind="stable")  # sorted keys: each search starts nearer
        keys = x[order, j]
        # population values < each key; <= it is one more where the key is one of the distinct
        # values (a NaN key, never equal, is searched again)
        fewer = np.searchsorted(values, keys, side="left")
        equal = np.zeros(m, dtype=bool)
        inside = fewer < values.size
        equal[inside] = values[fewer[inside]] == keys[inside]
        at_most = fewer + equal
        nan = np.isnan(keys)
        if nan.any():
            at_most[nan] = np.searchsorted(values, keys[nan], side="right")
        last_of = below[at_most] - 1
        first_of = below[fewer]
        # values outside the population (not on its rows) take the nearest tail probability
        left[j, order] = neg_log[np.clip(last_of, 0, n - 1)]
        right[j, order] = neg_log[np.clip(n - 1 - first_of, 0, n - 1)]

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        list(pool.map(column, range(d)))
    return Tails(left, right, fitted.skew_sign)


@dataclass
class FittedHBOS:
    hists: list[np.ndarray]
    edges: list[np.ndarray]
    n_bins: int
    alpha: float
    tol: float


def hbos_fit(x: np.ndarray, n_bins: int = 10, alpha: float = 0.1, tol: float = 0.5) -> FittedHBOS:
    hists, edges = [], []
    for i in range(x.shape[1]):
        h, e = np.histogram(x[:, i], bins=n_bins, density=True)
        hists.append(h)
        edges.append(e)
    return FittedHBOS(hists, edges, n_bins, alpha, tol)


def hbos_score(fitted: FittedHBOS, x: np.ndarray) -> np.ndarray:
    """`hbos_scores` of rows `x` against the fitted histograms (PyOD's rule beyond the edges)."""
    n, d = x.shape
    n_bins, tol = fitted.n_bins, fitted.tol
    scores = np.zeros((n, d))
    for i in range(d):
        hist, edges = fitted.hists[i], fitted.edges[i]
        inds = np.digitize(x[:, i], edges, right=True)
        out = np.log2(hist + fitted.alpha)
        idx = np.clip(inds - 1, 0, n_bins - 1)
        scores[:, i] = out[idx]
        below, above = inds == 0, inds == n_bins + 1
        if below.any():
            far = (edges[0] - x[below, i]) > (edges[1] - edges[0]) * tol
            scores[np.flatnonzero(below)[far], i] = out.min()
        if above.any():
            far = (x[above, i] - edges[-1]) > (edges[-1] - edges[-2]) * tol
            scores[np.flatnonzero(above)[~far], i] = out[n_bins - 1]
            scores[np.flatnonzero(above)[far], i] = out.min()
    return -1 * np.sum(scores, axis=1)


def _skew_sign(x: np.ndarray) -> np.ndarray:
    """The sign of each column's skewness (PyOD's `np.sign(skew(X, axis=0))`), computed as
    scipy's `skew` computes it (the mean, then the second and third central moments as
    d**2 and d**2 * d, NaN where the second moment is zero within rounding), one contiguous
    column at a time in two reused buffers: scipy's generic array-API path took 7.3 s on
    490k x 68, and whole-matrix temporaries cost seconds of fresh memory on a loaded machine."""
    rows = np.ascontiguousarray(x.T)
    d, n = rows.shape
    mean = np.empty(d)
    m2, m3 = np.empty(d), np.empty(d)
    dev, power = np.empty(n), np.empty(n)
    for j in range(d):
        mean[j] = np.mean(rows[j])
        np.subtract(rows[j], mean[j], out=dev)
        np.multiply(dev, dev, out=power)
        m2[j] = np.mean(power)
        power *= dev
        m3[j] = np.mean(power)
    with np.errstate(all="ignore"):
        zero = m2 <= (np.finfo(m2.dtype).eps * mean) ** 2
        return np.sign(np.where(zero, np.nan, m3 / m2**1.5))
