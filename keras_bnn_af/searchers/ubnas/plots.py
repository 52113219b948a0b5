"""Figures of a UBNAS search: α per edge over the epochs, and the derived cell.

```python
history = read_history("nas/mnist")
plot_search(history, config.ops, config.nodes, "nas/mnist")  # alphas_*.png
plot_cell(Genotype.load("nas/mnist/genotype.json"), "nas/mnist/normal.png")
```

Matplotlib only (Agg, no display, no graphviz), and no TensorFlow: `plot_cell`
also takes the genotype as the JSON dict a search writes (`genotype.json`).
As in `keras_bnn_af.plots`, every function writes one PNG to a path whose
folder must exist (checked first: a missing folder is a `ValueError` naming
the fix), and bad input is a `ValueError` before anything is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af._files import check_output_file
from keras_bnn_af.searchers.ubnas.genotype import edge_count

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["plot_alphas", "plot_cell", "plot_search"]

KINDS = ("normal", "reduce")

#: Where the cell's nodes sit (data units; the axes have an equal aspect).
_STEP, _NODE_Y, _INPUT_Y, _RADIUS = 2.6, 0.9, 1.4, 0.42
_BOX_WIDTH, _BOX_HEIGHT = 1.3, 0.62
#: Curvatures tried, in order, for an edge that would cross another node.
_RADS = (0.0, 0.2, -0.2, 0.35, -0.35, 0.5, -0.5)
#: Points along an arrow (its parameter t), for routing and labels.
_SAMPLES = np.linspace(0.0, 1.0, 41)


def plot_search(history, ops, nodes: int, out_dir: str | Path) -> list[Path]:
    """`alphas_normal.png` and `alphas_reduce.png` in `out_dir` (`plot_alphas`).

    Both cell types are checked before either figure is drawn.
    """
    paths = [Path(out_dir) / f"alphas_{kind}.png" for kind in KINDS]
    for path in paths:
        check_output_file(path, "out_dir")
    for kind in KINDS:
        _alpha_series(history, ops, nodes, kind)
    return [
        plot_alphas(history, ops, nodes, path, kind=kind)
        for kind, path in zip(KINDS, paths, strict=True)
    ]


def plot_alphas(
    history: Sequence[Mapping],
    ops: Sequence[str],
    nodes: int,
    path: str | Path,
    kind: str = "normal",
) -> Path:
    """softmax(α) of every op on every edge of one cell type, per epoch.

    One panel per edge, a row per node (node `j` has `j + 2` inputs: the
    cell's inputs `c_{k-2}`, `c_{k-1}`, then the earlier nodes); x is the
    epoch (1-based), one line per op of `ops` (`config.ops`, α's column
    order). A dotted line marks the end of the warm-up, after which α moves.

    # Arguments
        history: `search.read_history(out_dir)`, records with `epoch`,
            `phase` and `alphas[kind]` (edges x ops softmax weights).
        nodes: the search's `nodes`; the records must have
            `nodes * (nodes + 3) / 2` edges.

    # Raises
        ValueError: the folder of `path` does not exist, `history` is empty,
            or its α do not match `nodes`, `ops` or `kind`.
    """
    check_output_file(path)
    epochs, weights, switch = _alpha_series(history, ops, nodes, kind)
    columns = nodes + 1
    figure, axes = plt.subplots(
        nodes,
        columns,
        figsize=(2.3 * columns + 1.9, 1.75 * nodes + 0.8),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    marker = "o" if len(epochs) <= 40 else None
    edge = 0
    for node in range(nodes):
        for source in range(columns):
            axis = axes[node, source]
            if source >= node + 2:
                axis.set_visible(False)
                continue
            for column, op in enumerate(ops):
                axis.plot(
                    epochs,
                    weights[:, edge, column],
                    marker=marker,
                    markersize=2.5,
                    linewidth=1.2,
                    label=op,
                )
            if switch is not None:
                axis.axvline(
                    switch, color="k", linestyle=":", linewidth=1, label="search starts"
                )
            axis.set_title(f"node {node} ← {_input_label(source)}", fontsize=9)
            axis.grid(alpha=0.3)
            axis.tick_params(labelsize=8)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            edge += 1
        axes[node, 0].set_ylabel("softmax(α)", fontsize=8)
    for axis in axes[-1]:
        axis.set_xlabel("epoch", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    width = figure.get_figwidth()
    figure.legend(handles, labels, loc="center right", fontsize="small", title="op")
    figure.suptitle(f"{kind} cell: softmax(α) of each edge's ops")
    figure.tight_layout(rect=(0, 0, 1 - 1.8 / width, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def plot_cell(genotype, path: str | Path, kind: str = "normal") -> Path:
    """The derived cell of one type as a graph, inputs left, output right.

    `genotype` is a `genotype.Genotype` or its JSON dict (`genotype.json`).
    The cell's inputs `c_{k-2}` and `c_{k-1}` sit on the left, nodes
    `0 .. nodes-1` left to right in the middle, the output `c_{k}` on the
    right. Each of a node's two inputs is an arrow labelled with its op; a
    dashed arrow from every node to `c_{k}` is the concatenation. An edge that
    would cross another node bends around it; the layout depends on the
    genotype alone.

    # Raises
        ValueError: the folder of `path` does not exist, `kind` is not
            `normal` or `reduce`, or the genotype's pairs do not fit its nodes.
    """
    check_output_file(path)
    nodes, pairs = _cell_pairs(genotype, kind)
    centres = _cell_layout(nodes)
    right = _STEP * (nodes + 1)
    figure, axis = plt.subplots(
        figsize=(0.8 * (right + 2.2), 0.8 * (2 * _INPUT_Y + 2.2))
    )
    axis.set_xlim(-1.1, right + 1.1)
    axis.set_ylim(-_INPUT_Y - 1.1, _INPUT_Y + 1.1)
    axis.set_aspect("equal")
    axis.axis("off")
    patches = {name: _node_patch(axis, name, at) for name, at in centres.items()}
    taken, curves, ops = {}, [], []
    for index, (op, source) in enumerate(pairs):
        start = "c_{k-2}" if source == 0 else "c_{k-1}" if source == 1 else source - 2
        curves.append(_edge(axis, centres, patches, start, index // 2, taken))
        ops.append(op)
    for node in range(nodes):
        curves.append(_edge(axis, centres, patches, node, "c_{k}", taken))
    placed, extents = [], [(c, _half_extent(n)) for n, c in centres.items()]
    for index, op in enumerate(ops):
        others = [curve for other, curve in enumerate(curves) if other != index]
        colour = _colour(index // 2)
        _edge_label(axis, curves[index], op, colour, others, placed, extents)
    axis.set_title(f"{kind} cell ({nodes} nodes)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def _alpha_series(history, ops, nodes, kind):
    """(epochs, weights of shape (epochs, edges, ops), x of the search's start)."""
    _check_kind(kind)
    nodes = _check_nodes(nodes)
    ops = [str(op) for op in ops]
    if not history:
        raise ValueError(
            "UBNAS history is empty; expected at least one epoch record. Fix: pass "
            "read_history(out_dir) of a search that has completed an epoch."
        )
    edges = edge_count(nodes)
    epochs, weights, phases = [], [], []
    for index, record in enumerate(history):
        try:
            epoch = int(record["epoch"])
            alpha = np.asarray(record["alphas"][kind], dtype=float)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"UBNAS history record {index} has no {kind} α ({error!r}); expected "
                "records with 'epoch' and 'alphas' (edges x ops). Fix: pass "
                "read_history(out_dir)."
            ) from None
        if alpha.ndim != 2 or len(alpha) != edges:
            found = len(alpha) if alpha.ndim else 0
            raise ValueError(
                f"UBNAS history epoch {epoch + 1} has {found} {kind} edges; expected "
                f"{edges} for nodes={nodes} (node j has j + 2 inputs). Fix: pass "
                "the nodes the search ran with (its config.json)."
            )
        if alpha.shape[1] != len(ops):
            raise ValueError(
                f"UBNAS history epoch {epoch + 1} has {alpha.shape[1]} op weights "
                f"per {kind} edge; expected one per op of {ops}. Fix: pass the ops "
                "the search ran with (its config.json)."
            )
        epochs.append(epoch + 1)
        weights.append(alpha)
        phases.append(record.get("phase"))
    switch = next(
        (
            epochs[i]
            for i in range(len(phases) - 1)
            if phases[i] == "warm-up" and phases[i + 1] == "search"
        ),
        None,
    )
    return np.array(epochs), np.stack(weights), switch


def _cell_pairs(genotype, kind):
    """(nodes, ((op, source), ...)) of a Genotype or its JSON dict, checked."""
    _check_kind(kind)
    if isinstance(genotype, Mapping):
        nodes, pairs = genotype.get("nodes"), genotype.get(kind)
    else:
        nodes, pairs = getattr(genotype, "nodes", None), getattr(genotype, kind, None)
    nodes = _check_nodes(nodes)
    try:
        pairs = [(str(op), int(source)) for op, source in pairs]
    except (TypeError, ValueError):
        pairs = None
    if pairs is None or len(pairs) != 2 * nodes:
        found = "no list of (op, input) pairs" if pairs is None else len(pairs)
        raise ValueError(
            f"UBNAS genotype {kind} cell has {found}; expected 2 (op, input) pairs "
            f"per node, {2 * nodes} for nodes={nodes}. Fix: pass a Genotype or the "
            "genotype.json a search wrote."
        )
    for index, (op, source) in enumerate(pairs):
        node = index // 2
        if not 0 <= source < node + 2:
            raise ValueError(
                f"UBNAS genotype {kind} node {node} has ({op!r}, {source}); expected "
                f"an input in 0..{node + 1} (the cell's two inputs, then earlier "
                "nodes). Fix: correct that pair."
            )
    return nodes, pairs


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(
            f"UBNAS cell kind {kind!r}; expected one of {list(KINDS)}."
            f"{did_you_mean(kind, KINDS)} Fix: pass kind='normal' or kind='reduce'."
        )


def _check_nodes(nodes) -> int:
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise ValueError(
            f"UBNAS nodes={nodes!r}; expected an integer >= 1. Fix: pass the nodes "
            "the search ran with (its config.json)."
        )
    return nodes


def _input_label(source: int) -> str:
    """Input `source` of a node, as a title: c_{k-2}, c_{k-1}, node 0, ..."""
    return ("$c_{k-2}$", "$c_{k-1}$")[source] if source < 2 else f"node {source - 2}"


def _cell_layout(nodes: int) -> dict:
    """Centre of each node: inputs left, nodes zigzag left to right, output right."""
    centres = {"c_{k-2}": (0.0, _INPUT_Y), "c_{k-1}": (0.0, -_INPUT_Y)}
    for node in range(nodes):
        centres[node] = (_STEP * (node + 1), _NODE_Y if node % 2 == 0 else -_NODE_Y)
    centres["c_{k}"] = (_STEP * (nodes + 1), 0.0)
    return centres


def _colour(node: int) -> str:
    """A node's colour: its circle and the two arrows into it, their labels."""
    return f"C{node % 10}"


def _half_extent(name) -> tuple[float, float]:
    """Half the width and height of a node's shape."""
    return (_RADIUS, _RADIUS) if isinstance(name, int) else (_BOX_WIDTH / 2, 0.36)


def _node_patch(axis, name, centre):
    x, y = centre
    if isinstance(name, int):
        patch = Circle(
            centre, _RADIUS, facecolor="#eef3fa", edgecolor=_colour(name), linewidth=2
        )
        text = str(name)
    else:
        patch = FancyBboxPatch(
            (x - _BOX_WIDTH / 2, y - _BOX_HEIGHT / 2),
            _BOX_WIDTH,
            _BOX_HEIGHT,
            boxstyle="round,pad=0.05",
            facecolor="#fff2cc" if name == "c_{k}" else "#d9ead3",
            edgecolor="0.2",
        )
        text = f"${name}$"
    patch.set_zorder(3)
    axis.add_patch(patch)
    axis.text(x, y, text, ha="center", va="center", fontsize=11, zorder=4)
    return patch


def _edge(axis, centres, patches, start, end, taken):
    """Draws one arrow, bent around other nodes; returns points along it.

    An input is solid, in the colour of its node; a node's arrow to the
    output (the concatenation) is dashed grey.
    """
    a, b = np.asarray(centres[start]), np.asarray(centres[end])
    others = [np.asarray(c) for n, c in centres.items() if n not in (start, end)]
    used = taken.setdefault((start, end), [])
    rad = _route(a, b, others, used)
    used.append(rad)
    concat = end == "c_{k}"
    patch = FancyArrowPatch(
        tuple(a),
        tuple(b),
        patchA=patches[start],
        patchB=patches[end],
        connectionstyle=f"arc3,rad={rad}",
        arrowstyle="-|>",
        mutation_scale=12,
        linewidth=1.2,
        linestyle="--" if concat else "-",
        color="0.55" if concat else _colour(end),
        zorder=2,
    )
    axis.add_patch(patch)
    return _bezier(a, _control(a, b, rad), b, _SAMPLES)


def _route(a, b, others, used) -> float:
    """The first curvature whose arc keeps clear of every other node."""
    best, best_gap = None, -1.0
    for rad in _RADS:
        if any(abs(rad - other) < 0.3 for other in used):  # a twin arrow
            continue
        curve = _bezier(a, _control(a, b, rad), b, _SAMPLES[2:-2])
        gap = min(
            (np.linalg.norm(curve - other, axis=1).min() for other in others),
            default=np.inf,
        )
        if gap >= _BOX_WIDTH / 2 + 0.2:
            return rad
        if gap > best_gap:
            best, best_gap = rad, gap
    return best


def _control(a, b, rad):
    """The control point of matplotlib's `arc3` connection (equal aspect)."""
    dx, dy = b - a
    return (a + b) / 2 + rad * np.array([dy, -dx])


def _bezier(a, control, b, t):
    t = np.asarray(t)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * control + t**2 * b


def _edge_label(axis, curve, text, colour, others, placed, extents):
    """The op's name on its arrow, clear of the nodes, and as far from other
    arrows and labels as it can be (the middle of the arrow on a tie)."""
    half = 0.055 * len(text) + 0.1  # half the label's width, in data units
    middle = len(curve) // 2
    candidates = sorted(range(4, len(curve) - 4), key=lambda i: abs(i - middle))
    best, best_gap = None, -np.inf
    for index in candidates:
        x, y = curve[index]
        # Each measure is < 1 where the label would cover the thing measured.
        nodes = [
            max(abs(x - u) / (width + half), abs(y - v) / (height + 0.15))
            for (u, v), (width, height) in extents
        ]
        if min(nodes) < 1:
            continue
        gaps = [
            np.hypot((c[:, 0] - x) / half, (c[:, 1] - y) / 0.2).min() for c in others
        ]
        gaps += [np.hypot((x - u) / (half + w), (y - v) / 0.3) for u, v, w in placed]
        gap = min(gaps, default=np.inf)
        if gap > best_gap + 1e-9:
            best, best_gap = (x, y), gap
    if best is None:  # an arrow hidden by nodes: label its middle
        best = tuple(curve[middle])
    placed.append((*best, half))
    axis.text(
        *best,
        text,
        ha="center",
        va="center",
        fontsize=8,
        color=colour,
        zorder=5,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
    )
