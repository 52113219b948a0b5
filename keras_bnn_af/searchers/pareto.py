r"""Pareto selection primitives for multi-objective search (NSGA-II style).

```python
from keras_bnn_af.searchers import pareto

points = [[0.10, 3.0], [0.08, 5.0], [0.12, 2.0], [0.11, 3.5]]  # error, MB
pareto.non_dominated_fronts(points)         # [[0, 1, 2], [3]]
pareto.pareto_ranking(points)               # [1, 2, 0, 3]: best first
pareto.hypervolume(points, reference=[1.0, 10.0])  # 7.28
```

Every objective is **minimized** (negate the ones to maximize); `points` has
shape `(n, m)`, one row per point. `violations`, when given, holds one
non-negative total constraint violation per point (0 = feasible). Everything
is pure and deterministic (NumPy only, no randomness): ties are broken by index.

``a`` dominates ``b`` iff \\(a_i \le b_i\\) for all \\(i\\) and \\(a_j < b_j\\)
for some \\(j\\). Fronts, crowding and the crowded ranking follow Deb et al.
(2002), constrained domination Deb (2000), hypervolume slicing While et al. (2006).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "constrained_dominates",
    "crowding_distance",
    "dominates",
    "hypervolume",
    "non_dominated_fronts",
    "pareto_front",
    "pareto_ranking",
    "rank_and_crowding",
]

_EXAMPLE = "Pass e.g. [[0.1, 3.0], [0.2, 2.0]] (one row of objectives per point)."


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` dominates ``b``: a_i <= b_i for all i and a_j < b_j for some j."""
    a, b = _pair(a, b, "dominates")
    return bool(np.all(a <= b) and np.any(a < b))


def constrained_dominates(
    a: Sequence[float], b: Sequence[float], violation_a: float, violation_b: float
) -> bool:
    """Deb's constrained domination of ``b`` by ``a`` (violations >= 0, 0 = feasible).

    A feasible point beats an infeasible one; of two infeasible points the smaller
    violation wins (equal violations: neither); of two feasible, `dominates`.
    """
    _pair(a, b, "constrained_dominates")
    for name, value in (("violation_a", violation_a), ("violation_b", violation_b)):
        if isinstance(value, bool) or not (
            isinstance(value, numbers.Real) and value >= 0
        ):
            raise ValueError(
                f"constrained_dominates got {name}={value!r}; expected a non-negative "
                f"float (0 = feasible). Pass e.g. {name}=0.0 for a feasible point."
            )
    if violation_a == 0 and violation_b == 0:
        return dominates(a, b)
    return (violation_a == 0) or (0 < violation_a < violation_b)


def non_dominated_fronts(points, violations=None) -> list[list[int]]:
    """The fronts F1, F2, ... of indices, each in ascending order.

    F1 holds the points no point dominates, F(k+1) those only points of F1..Fk
    dominate (fast non-dominated sort, O(m n^2)); with `violations`, domination
    is `constrained_dominates`.
    """
    return _fronts(*_checked(points, violations, "non_dominated_fronts"))


def _fronts(p: np.ndarray, v: np.ndarray | None) -> list[list[int]]:
    beats = _domination_matrix(p, v)  # beats[i, j]: i dominates j
    dominated_by = beats.sum(axis=0)
    fronts = []
    current = np.flatnonzero(dominated_by == 0)
    while current.size:
        fronts.append(current.tolist())
        dominated_by -= beats[current].sum(axis=0)
        dominated_by[current] = -1  # done: never 0 again
        current = np.flatnonzero(dominated_by == 0)
    return fronts


def crowding_distance(points) -> np.ndarray:
    r"""The crowding distance of each point of ONE front (larger = less crowded).

    Per objective \\(k\\), sort the points by \\(f_k\\) (ties by index); the
    first and last get \\(\infty\\), each other point \\(i\\) adds
    \\((f_k(\text{next}) - f_k(\text{previous})) / (\max f_k - \min f_k)\\),
    or 0 when that range is 0. A front of one or two points is all \\(\infty\\).
    """
    return _crowding(_as_points(points, "crowding_distance"))


def _crowding(p: np.ndarray) -> np.ndarray:
    n = len(p)
    distance = np.zeros(n)
    if n == 0:
        return distance
    for column in p.T:
        order = np.argsort(column, kind="stable")  # stable: ties by index
        distance[order[[0, -1]]] = np.inf
        spread = column[order[-1]] - column[order[0]]
        if n > 2 and spread > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / spread
    return distance


def rank_and_crowding(points, violations=None) -> tuple[np.ndarray, np.ndarray]:
    """Per point, its front number (0-based) and its crowding distance in that front.

    The keys of NSGA-II's crowded comparison: the lower rank wins, then the larger
    distance.
    """
    return _rank_and_crowding(*_checked(points, violations, "rank_and_crowding"))


def _rank_and_crowding(p: np.ndarray, v: np.ndarray | None):
    rank = np.zeros(len(p), dtype=int)
    crowding = np.zeros(len(p))
    for number, front in enumerate(_fronts(p, v)):
        rank[front] = number
        crowding[front] = _crowding(p[front])
    return rank, crowding


def pareto_ranking(points, violations=None) -> list[int]:
    """All indices, best first: by front, then crowding distance descending, then
    index ascending (what survival and tournament selection use)."""
    rank, crowding = _rank_and_crowding(*_checked(points, violations, "pareto_ranking"))
    return sorted(range(len(rank)), key=lambda i: (rank[i], -crowding[i], i))


def pareto_front(points, violations=None) -> list[int]:
    """The indices of the first front (ascending); `[]` for no points."""
    fronts = _fronts(*_checked(points, violations, "pareto_front"))
    return fronts[0] if fronts else []


def hypervolume(points, reference: Sequence[float]) -> float:
    r"""The volume dominated by `points` and bounded by `reference` (minimization).

    \\(HV = \lambda\left(\bigcup_i [p_i, r]\right)\\), the Lebesgue measure of the
    union of the boxes between each point and the reference. A point not strictly
    better than the reference in every objective contributes nothing. Exact: a
    sweep in 2-D, and above by slicing along the first objective (HSO), which is
    fine for a search's few points (n <= 100, m <= 4).

    # Raises
        ValueError: if `reference` does not hold one finite value per objective,
            or `points` is not an (n, m) array of finite floats.
    """
    p = _as_points(points, "hypervolume")
    r = _floats(reference)
    m = p.shape[1] if len(p) else None
    if r is None or r.ndim != 1 or r.size != (m or r.size) or not np.isfinite(r).all():
        got = "not numbers" if r is None else f"shape {r.shape}"
        raise ValueError(
            f"hypervolume got reference={reference!r} ({got}) for points with "
            f"{m or 'any number of'} objectives; expected one finite value per "
            "objective. Pass a 1-D reference of that length, worse than every "
            "point (e.g. the nadir plus a margin)."
        )
    return float(_hso(p[np.all(p < r, axis=1)], r)) if len(p) else 0.0


def _hso(p: np.ndarray, r: np.ndarray) -> float:
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(r[0] - p[:, 0].min())
    p = p[np.lexsort(p.T[::-1])]  # by the first objective, then the next ...
    if p.shape[1] == 2:
        best_before = np.minimum.accumulate(np.concatenate([[r[1]], p[:-1, 1]]))
        gain = np.maximum(best_before - p[:, 1], 0.0)
        return float(np.sum((r[0] - p[:, 0]) * gain))
    upper = np.append(p[1:, 0], r[0])  # slab i: [x_i, x_(i+1)) holds points 0..i
    return sum(
        (upper[i] - p[i, 0]) * _hso(p[: i + 1, 1:], r[1:])
        for i in range(len(p))
        if upper[i] > p[i, 0]
    )


def _domination_matrix(p: np.ndarray, v: np.ndarray | None) -> np.ndarray:
    left, right = p[:, None, :], p[None, :, :]
    beats = np.all(left <= right, axis=2) & np.any(left < right, axis=2)
    if v is not None:
        feasible = v == 0
        infeasible = ~feasible
        beats = (feasible[:, None] & feasible[None, :] & beats) | (
            infeasible[None, :] & (feasible[:, None] | (v[:, None] < v[None, :]))
        )
    return beats


def _pair(a, b, caller: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = _floats(a), _floats(b)
    if x is None or y is None or x.ndim != 1 or x.shape != y.shape or not x.size:
        x = None
    if x is None or not np.isfinite(np.append(x, y)).all():
        raise ValueError(
            f"{caller} got a={a!r} and b={b!r}; expected two points with the same "
            "number (>= 1) of finite objective values. Pass e.g. a=[0.1, 3.0], "
            "b=[0.2, 2.0]."
        )
    return x, y


def _checked(points, violations, caller: str):
    p = _as_points(points, caller)
    return p, _as_violations(violations, len(p), caller)


def _floats(value) -> np.ndarray | None:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def _as_points(points, caller: str) -> np.ndarray:
    p = _floats(points)
    if p is None:
        try:
            lengths = sorted({len(row) for row in points})
        except TypeError:
            lengths = []
        what = (
            f"ragged points (rows of lengths {lengths})"
            if len(lengths) > 1
            else f"points={points!r}, not numbers"
        )
        raise ValueError(
            f"{caller} got {what}; expected an (n_points, n_objectives) array of "
            f"floats, every row the same length. {_EXAMPLE}"
        )
    if p.ndim in (1, 2) and len(p) == 0:
        return p.reshape(0, p.shape[1] if p.ndim == 2 else 0)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(
            f"{caller} got points of shape {p.shape}; expected a 2-D array of shape "
            f"(n_points, n_objectives >= 1). {_EXAMPLE} Wrap a single point in a list."
        )
    bad = np.flatnonzero(~np.all(np.isfinite(p), axis=1))
    if bad.size:
        raise ValueError(
            f"{caller} got points[{bad[0]}]={p[bad[0]].tolist()}; expected finite "
            "objective values (no NaN or inf). Drop that point, or give it a finite "
            "worst value and a positive violation."
        )
    return p


def _as_violations(violations, n: int, caller: str) -> np.ndarray | None:
    if violations is None:
        return None
    v = _floats(violations)
    if v is None or v.shape != (n,):
        got = "non-numeric values" if v is None else f"shape {v.shape}"
        raise ValueError(
            f"{caller} got violations={violations!r} ({got}) for {n} points; "
            f"expected one non-negative float per point, shape ({n},). Pass a "
            "violation per point (0 = feasible), or None when all are feasible."
        )
    bad = np.flatnonzero(~(v >= 0))  # catches NaN too
    if bad.size:
        raise ValueError(
            f"{caller} got violations[{bad[0]}]={float(v[bad[0]])!r}; expected a "
            "non-negative total violation (0 = feasible). Pass the sum of "
            "max(0, g(x)) over the constraints g(x) <= 0."
        )
    return v
