"""Pareto primitives against brute-force references written here, independently.

The references are deliberately naive (pure Python loops, front peeling, crowding
by explicit neighbours, hypervolume by inclusion-exclusion over all subsets), so a
bug in the module's vectorized code cannot hide in a shared helper.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keras_bnn_af.searchers import pareto

RUN = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- references ----------------------------------------------------------------------


def ref_dominates(a, b) -> bool:
    no_worse = all(x <= y for x, y in zip(a, b, strict=True))
    better = any(x < y for x, y in zip(a, b, strict=True))
    return no_worse and better


def ref_constrained(a, b, va, vb) -> bool:
    if va > 0 and vb > 0:
        return va < vb
    if va > 0 or vb > 0:
        return va == 0
    return ref_dominates(a, b)


def ref_fronts(points, violations=None) -> list[list[int]]:
    """Peel: repeatedly take the remaining points that no remaining point beats."""

    def beats(i, j):
        if violations is None:
            return ref_dominates(points[i], points[j])
        return ref_constrained(points[i], points[j], violations[i], violations[j])

    remaining, fronts = set(range(len(points))), []
    while remaining:
        front = sorted(j for j in remaining if not any(beats(i, j) for i in remaining))
        fronts.append(front)
        remaining -= set(front)
    return fronts


def ref_crowding(points) -> list[float]:
    """Per point and objective, the explicit neighbours in (value, index) order."""
    n, distances = len(points), []
    for i in range(n):
        total = 0.0
        for k in range(len(points[i])):
            key = [(points[j][k], j) for j in range(n)]
            below = [key[j] for j in range(n) if key[j] < key[i]]
            above = [key[j] for j in range(n) if key[j] > key[i]]
            if not below or not above:
                total = math.inf
                continue
            spread = max(key)[0] - min(key)[0]
            if spread > 0:
                total += (min(above)[0] - max(below)[0]) / spread
        distances.append(total)
    return distances


def ref_hypervolume(points, reference) -> float:
    """Inclusion-exclusion: sum over subsets S of (-1)^(|S|+1) vol(intersection)."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = [max(p[k] for p in subset) for k in range(len(reference))]
            volume = math.prod(
                max(r - c, 0.0) for r, c in zip(reference, corner, strict=True)
            )
            total += (-1) ** (size + 1) * volume
    return total


# --- strategies ----------------------------------------------------------------------

#: Few distinct values, so ties and duplicate points are common.
VALUES = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])


@st.composite
def point_sets(draw, max_n=12, dims=(2, 3), values=VALUES):
    m = draw(st.integers(*dims))
    n = draw(st.integers(0, max_n))
    return draw(
        st.lists(st.lists(values, min_size=m, max_size=m), min_size=n, max_size=n)
    )


@st.composite
def with_violations(draw):
    points = draw(point_sets())
    violations = draw(
        st.lists(
            st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0]),
            min_size=len(points),
            max_size=len(points),
        )
    )
    return points, violations


# --- domination and fronts -----------------------------------------------------------


def test_dominates_and_constrained_dominates():
    assert pareto.dominates([1, 2], [1, 3])
    assert not pareto.dominates([1, 2], [1, 2])  # equal: neither
    assert not pareto.dominates([1, 3], [2, 2])  # a trade-off: neither
    assert pareto.constrained_dominates([9, 9], [0, 0], 0.0, 0.1)  # feasible wins
    assert not pareto.constrained_dominates([0, 0], [9, 9], 0.1, 0.0)
    assert pareto.constrained_dominates([9, 9], [0, 0], 0.1, 0.2)  # smaller violation
    assert not pareto.constrained_dominates([0, 0], [9, 9], 0.2, 0.2)  # equal: neither
    assert pareto.constrained_dominates([0, 0], [1, 1], 0.0, 0.0)  # both feasible


@RUN
@given(point_sets())
def test_fronts_match_peeling(points):
    assert pareto.non_dominated_fronts(points) == ref_fronts(points)
    assert pareto.pareto_front(points) == (ref_fronts(points) or [[]])[0]
    for a, b in itertools.product(points[:4], repeat=2):
        assert pareto.dominates(a, b) == ref_dominates(a, b)


@RUN
@given(with_violations())
def test_constrained_fronts_match_peeling(case):
    points, violations = case
    expected = ref_fronts(points, violations)
    assert pareto.non_dominated_fronts(points, violations) == expected
    assert pareto.non_dominated_fronts(np.array(points), np.array(violations)) == (
        expected
    )
    for i, j in itertools.product(range(min(4, len(points))), repeat=2):
        assert pareto.constrained_dominates(
            points[i], points[j], violations[i], violations[j]
        ) == ref_constrained(points[i], points[j], violations[i], violations[j])


def test_fronts_hand_example():
    points = [[1, 4], [2, 2], [4, 1], [3, 3], [2, 2], [5, 5]]
    assert pareto.non_dominated_fronts(points) == [[0, 1, 2, 4], [3], [5]]
    # 1 and 4 infeasible (1 less so); 1 is beaten by every feasible point.
    violations = [0, 0.5, 0, 0, 1.0, 0]
    assert pareto.non_dominated_fronts(points, violations) == [[0, 2, 3], [5], [1], [4]]


# --- crowding and ranking ------------------------------------------------------------


def test_crowding_distance_hand_example():
    # Sorted by f1: (1,5) (2,3) (4,2) (6,1), range 6 - 1 = 5;
    # by f2: (6,1) (4,2) (2,3) (1,5), range 5 - 1 = 4.
    # (2,3): (4 - 1) / 5 + (5 - 2) / 4 = 0.6 + 0.75 = 1.35
    # (4,2): (6 - 2) / 5 + (3 - 1) / 4 = 0.8 + 0.5  = 1.3
    # (1,5) and (6,1) are boundary points: inf.
    points = [[4, 2], [1, 5], [6, 1], [2, 3]]
    np.testing.assert_allclose(
        pareto.crowding_distance(points), [1.3, math.inf, math.inf, 1.35]
    )
    assert pareto.pareto_ranking(points) == [1, 2, 3, 0]


def test_crowding_distance_small_and_degenerate_fronts():
    assert pareto.crowding_distance([]).shape == (0,)
    assert pareto.crowding_distance([[1, 2]]).tolist() == [math.inf]
    assert pareto.crowding_distance([[1, 2], [2, 1]]).tolist() == [math.inf] * 2
    # Three duplicates: index ties, so 0 and 2 are the boundary; range 0 adds 0.
    assert pareto.crowding_distance([[1, 1]] * 3).tolist() == [math.inf, 0.0, math.inf]


@RUN
@given(point_sets(max_n=10, dims=(1, 3)))
def test_crowding_distance_matches_neighbours(points):
    np.testing.assert_allclose(
        pareto.crowding_distance(points), ref_crowding(points), rtol=1e-12
    )


@RUN
@given(with_violations())
def test_ranking_orders_by_front_then_crowding_then_index(case):
    points, violations = case
    fronts = ref_fronts(points, violations)
    expected = []
    for front in fronts:
        crowding = ref_crowding([points[i] for i in front])
        order = sorted(range(len(front)), key=lambda k: (-crowding[k], front[k]))
        expected += [front[k] for k in order]
    assert pareto.pareto_ranking(points, violations) == expected
    rank, crowding = pareto.rank_and_crowding(points, violations)
    for number, front in enumerate(fronts):
        assert rank[front].tolist() == [number] * len(front)
        local = ref_crowding([points[i] for i in front])
        np.testing.assert_allclose(crowding[front], local, rtol=1e-12)


@st.composite
def distinct_per_objective(draw):
    """Points with no tie within any objective, and a permutation of them."""
    m, n = draw(st.integers(2, 3)), draw(st.integers(0, 10))
    column = st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True)
    columns = [draw(column) for _ in range(m)]
    points = [[c[i] / 7.0 for c in columns] for i in range(n)]
    return points, draw(st.permutations(range(n)))


@RUN
@given(distinct_per_objective())
def test_ranking_is_equivariant_under_permutation(case):
    points, permutation = case
    shuffled = [points[i] for i in permutation]  # shuffled[k] = points[perm[k]]
    rank, crowding = pareto.rank_and_crowding(points)
    rank2, crowding2 = pareto.rank_and_crowding(shuffled)
    assert rank2.tolist() == rank[permutation].tolist()
    assert crowding2.tolist() == crowding[permutation].tolist()
    # Same ranking up to the permutation, except for the order within ties of
    # (front, crowding), which both rankings break by their own index.
    ranking = pareto.pareto_ranking(points)
    mapped = [permutation[k] for k in pareto.pareto_ranking(shuffled)]
    key = [(rank[i], crowding[i]) for i in ranking]
    assert [(rank[i], crowding[i]) for i in mapped] == key
    ties = {k for k in key if key.count(k) > 1}
    assert [i for i in mapped if (rank[i], crowding[i]) not in ties] == [
        i for i in ranking if (rank[i], crowding[i]) not in ties
    ]


def test_ranking_hand_example_and_its_permutation():
    # F1 = {0, 1, 2, 3, 4}, F2 = {5, 6}. In F1, f1 spans 8 and f2 spans 9:
    # (1,6): 3/8 + 4/9 = 0.819, (3,5): 3/8 + 5/9 = 0.931, (4,1): 5/8 + 5/9 = 1.181;
    # (0,9) and (8,0) are boundaries (inf), as are both points of F2.
    points = [[0, 9.0], [1, 6.0], [3, 5.0], [4, 1.0], [8, 0.0], [2, 9.5], [9, 9.0]]
    assert pareto.pareto_ranking(points) == [0, 4, 3, 2, 1, 5, 6]
    # Permuted, the order is the same but for the ties (inf): 6 now comes before 5.
    permutation = [6, 3, 0, 5, 1, 4, 2]
    shuffled = [points[i] for i in permutation]
    mapped = [permutation[k] for k in pareto.pareto_ranking(shuffled)]
    assert mapped == [0, 4, 3, 2, 1, 6, 5]
    # Without ties (one point per front) it is exactly the permuted ranking.
    chain = [[3, 3], [1, 1], [2, 2], [4, 4]]
    assert pareto.pareto_ranking(chain) == [1, 2, 0, 3]
    assert pareto.pareto_ranking(chain[::-1]) == [2, 1, 3, 0]


# --- hypervolume ---------------------------------------------------------------------


def test_hypervolume_2d_hand_example():
    # Staircase to (4, 4), sorted by f1: (1,3) adds (4-1)*(4-3) = 3, (2,2) adds
    # (4-2)*(3-2) = 2, (3,1) adds (4-3)*(2-1) = 1: total 6. (2,3) is dominated;
    # (5,0) lies outside the reference and (4,0) on its boundary: they add 0.
    points = [[2, 2], [3, 1], [1, 3], [2, 3], [5, 0], [4, 0]]
    assert pareto.hypervolume(points, [4, 4]) == pytest.approx(6.0)
    assert pareto.hypervolume([[1, 3]], [4, 4]) == pytest.approx(3.0)
    assert pareto.hypervolume([[5, 0]], [4, 4]) == 0.0
    assert pareto.hypervolume([], [4, 4]) == 0.0
    assert pareto.hypervolume(np.zeros((0, 2)), [4, 4]) == 0.0


def test_hypervolume_3d_hand_example():
    # Boxes [0,2]x[0,2]x[1,2] (volume 4) and [1,2]x[1,2]x[0,2] (volume 2)
    # overlap in [1,2]x[1,2]x[1,2] (volume 1): union 4 + 2 - 1 = 5.
    assert pareto.hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(5.0)


COORDS = st.integers(0, 5).map(float)


@RUN
@given(point_sets(max_n=8, dims=(1, 4), values=COORDS))
def test_hypervolume_matches_inclusion_exclusion(points):
    assume(points)
    reference = [4.5] * len(points[0])  # some points lie beyond it: empty boxes
    expected = ref_hypervolume(points, reference)
    assert pareto.hypervolume(points, reference) == pytest.approx(expected, abs=1e-9)


@RUN
@given(
    point_sets(max_n=8, dims=(2, 4), values=COORDS).flatmap(
        lambda p: st.tuples(
            st.just(p),
            st.permutations(p),
            st.integers(0, 100),
            st.lists(COORDS, min_size=4, max_size=4),
        )
    )
)
def test_hypervolume_invariances_and_monotonicity(case):
    points, shuffled, pick, extra = case
    assume(points)
    m = len(points[0])
    reference = [6.0] * m
    volume = pareto.hypervolume(points, reference)
    assert pareto.hypervolume(shuffled, reference) == pytest.approx(volume)
    base = points[pick % len(points)]
    dominated = [x + d for x, d in zip(base, extra, strict=False)]
    assert pareto.hypervolume([*points, dominated], reference) == pytest.approx(volume)
    candidate = extra[:m]
    grown = pareto.hypervolume([*points, candidate], reference)
    assert grown >= volume - 1e-9
    if not any(all(x <= y for x, y in zip(p, candidate, strict=True)) for p in points):
        assert grown > volume + 1e-9  # not weakly dominated: it adds a box corner


# --- errors and empty input ----------------------------------------------------------


def test_empty_input():
    assert pareto.non_dominated_fronts([]) == []
    assert pareto.pareto_ranking([]) == []
    assert pareto.pareto_front([]) == []
    rank, crowding = pareto.rank_and_crowding([], violations=[])
    assert rank.shape == crowding.shape == (0,)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pareto.non_dominated_fronts([[1, 2], [1, 2, 3]]), r"lengths \[2, 3\]"),
        (lambda: pareto.non_dominated_fronts([1, 2, 3]), r"shape \(3,\).*Wrap"),
        (lambda: pareto.pareto_ranking([[[1, 2]]]), r"shape \(1, 1, 2\).*Pass e\.g\."),
        (lambda: pareto.pareto_ranking([[], []]), r"shape \(2, 0\).*Pass e\.g\."),
        (lambda: pareto.pareto_front([["a", 1]]), r"'a'.*Pass e\.g\."),
        (lambda: pareto.pareto_front([[1, 2], [np.nan, 1]]), r"points\[1\]=\[nan, 1"),
        (lambda: pareto.crowding_distance([[1, np.inf]]), r"points\[0\]=\[1.0, inf\]"),
        (
            lambda: pareto.non_dominated_fronts([[1, 2], [2, 1]], [0, -0.5]),
            r"violations\[1\]=-0\.5.*non-negative.*Pass",
        ),
        (
            lambda: pareto.non_dominated_fronts([[1, 2], [2, 1]], [0, np.nan]),
            r"violations\[1\]=nan",
        ),
        (
            lambda: pareto.pareto_ranking([[1, 2], [2, 1]], [0, 0, 0]),
            r"violations=\[0, 0, 0\] \(shape \(3,\)\) for 2 points.*Pass",
        ),
        (
            lambda: pareto.hypervolume([[1, 2]], [3, 3, 3]),
            r"reference=\[3, 3, 3\] \(shape \(3,\)\) for points with 2 obj.*Pass",
        ),
        (lambda: pareto.hypervolume([[1, 2]], [3, np.nan]), r"reference=.*nan.*Pass"),
        (
            lambda: pareto.dominates([1, 2], [1, 2, 3]),
            r"a=\[1, 2\] and b=\[1, 2, 3\].*Pass e\.g\.",
        ),
        (lambda: pareto.dominates(1, 2), r"a=1 and b=2.*Pass e\.g\."),
        (
            lambda: pareto.constrained_dominates([1], [2], -1.0, 0.0),
            r"violation_a=-1\.0.*Pass e\.g\. violation_a=0\.0",
        ),
    ],
)
def test_errors_name_the_value_and_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()
