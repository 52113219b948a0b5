"""UBNAS figures: α per edge and the derived cell, written as valid PNGs, and
the errors of histories and genotypes that do not fit."""

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from keras_bnn_af.searchers.ubnas.plots import plot_alphas, plot_cell, plot_search

OPS = ("zero", "skip", "max_pool_3x3", "bconv_3x3")
NODES = 2
EDGES = 5  # node 0: inputs 0, 1; node 1: inputs 0, 1, node 0
PNG = b"\x89PNG\r\n\x1a\n"
CELL = {
    "nodes": NODES,
    "normal": [["bconv_3x3", 0], ["skip", 1], ["max_pool_3x3", 0], ["bconv_3x3", 2]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 0], ["bconv_3x3", 1], ["skip", 2]],
}


def _history(epochs=3, edges=EDGES, warmup=1):
    """read_history-like records: uniform α in the warm-up, then drifting."""
    rng = np.random.default_rng(0)
    records = []
    for epoch in range(epochs):
        alphas = {}
        for kind in ("normal", "reduce"):
            logits = rng.normal(size=(edges, len(OPS))) * (epoch >= warmup)
            weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            alphas[kind] = weights.round(5).tolist()
        phase = "search" if epoch >= warmup else "warm-up"
        records.append({"epoch": epoch, "phase": phase, "alphas": alphas})
    return records


def _assert_png(path, min_size=(200, 300)):
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG
    height, width = imread(path).shape[:2]
    assert height >= min_size[0] and width >= min_size[1]


def test_plot_search_writes_both_alpha_figures(tmp_path):
    paths = plot_search(_history(), OPS, NODES, tmp_path)
    assert paths == [tmp_path / "alphas_normal.png", tmp_path / "alphas_reduce.png"]
    for path in paths:
        _assert_png(path)


def test_plot_alphas_draws_one_panel_per_edge(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect
    path = plot_alphas(_history(), OPS, NODES, tmp_path / "a.png", kind="reduce")
    _assert_png(path)
    panels = [axis for axis in figures[0].axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == [
        "node 0 ← $c_{k-2}$",
        "node 0 ← $c_{k-1}$",
        "node 1 ← $c_{k-2}$",
        "node 1 ← $c_{k-1}$",
        "node 1 ← node 0",
    ]
    lines = panels[0].get_lines()
    assert [line.get_label() for line in lines] == [*OPS, "search starts"]
    assert list(lines[0].get_xdata()) == [1, 2, 3]
    assert list(lines[-1].get_xdata()) == [1, 1]  # the end of the warm-up
    assert len(figures[0].legends) == 1
    close(figures[0])


@pytest.mark.parametrize("kind", ["normal", "reduce"])
def test_plot_cell_writes_a_png_of_a_genotype(tmp_path, kind):
    from keras_bnn_af.searchers.ubnas.genotype import Genotype

    genotype = Genotype.from_json(CELL)
    _assert_png(plot_cell(genotype, tmp_path / f"{kind}.png", kind=kind))


def test_plot_cell_takes_genotype_json_and_four_nodes(tmp_path):
    cell = {
        "nodes": 4,
        "normal": [
            ["bconv_3x3", 0],
            ["dil_bconv_5x5", 1],
            ["skip", 0],
            ["max_pool_3x3", 2],
            ["bconv_5x5", 1],
            ["avg_pool_3x3", 3],
            ["dil_bconv_3x3", 0],
            ["bconv_3x3", 4],
        ],
    }
    path = plot_cell(cell, tmp_path / "cell.png")
    _assert_png(path, min_size=(250, 800))
    # Deterministic: the same genotype draws the same picture.
    again = plot_cell(cell, tmp_path / "again.png")
    assert np.array_equal(imread(path), imread(again))


def test_plots_do_not_import_tensorflow():
    code = (
        "import sys; import keras_bnn_af.searchers.ubnas.plots; "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("history", "nodes", "match"),
    [
        ([], NODES, r"history is empty; expected at least one epoch record\. Fix:"),
        (
            _history(edges=4),
            NODES,
            r"epoch 1 has 4 normal edges; expected 5 for nodes=2 .* Fix: pass the "
            r"nodes the search ran with",
        ),
        (
            _history(),
            3,
            r"epoch 1 has 5 normal edges; expected 9 for nodes=3 .* Fix:",
        ),
        ([{"epoch": 0}], NODES, r"record 0 has no normal α .* Fix: pass read_history"),
        (_history(), 0, r"nodes=0; expected an integer >= 1\. Fix:"),
    ],
)
def test_bad_history_is_a_clear_error(tmp_path, history, nodes, match):
    with pytest.raises(ValueError, match=match):
        plot_alphas(history, OPS, nodes, tmp_path / "a.png")
    with pytest.raises(ValueError, match=match):
        plot_search(history, OPS, nodes, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing drawn


def test_wrong_ops_and_kind_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"4 op weights .* expected one per op of"):
        plot_alphas(_history(), OPS[:3], NODES, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"kind 'normla'.* Did you mean 'normal'"):
        plot_alphas(_history(), OPS, NODES, tmp_path / "a.png", kind="normla")


@pytest.mark.parametrize(
    ("cell", "match"),
    [
        (
            {**CELL, "nodes": 3},
            r"normal cell has 4; expected 2 \(op, input\) pairs per node, 6 for "
            r"nodes=3\. Fix:",
        ),
        (
            {**CELL, "normal": [["skip", 2], *CELL["normal"][1:]]},
            r"node 0 has \('skip', 2\); expected an input in 0\.\.1 .* Fix:",
        ),
        ({"nodes": NODES}, r"normal cell has no list of \(op, input\) pairs"),
    ],
)
def test_bad_genotype_is_a_clear_error(tmp_path, cell, match):
    with pytest.raises(ValueError, match=match):
        plot_cell(cell, tmp_path / "cell.png")
    assert not (tmp_path / "cell.png").exists()


def test_missing_folder_is_refused_before_drawing(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        plot_cell(CELL, tmp_path / "missing" / "cell.png")
    with pytest.raises(ValueError, match="does not exist"):
        plot_search(_history(), OPS, NODES, tmp_path / "missing")
