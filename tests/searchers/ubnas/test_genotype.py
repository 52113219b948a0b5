"""UBNAS genotypes: derivation from hand-set α and β, the collapse guard, JSON round
trips, and the errors of genotypes and op lists."""

import json

import numpy as np
import pytest

from keras_bnn_af.searchers.ubnas import space
from keras_bnn_af.searchers.ubnas.genotype import Genotype, derive

OPS = ("zero", "skip", "max_pool_3x3", "bconv_3x3", "bconv_5x5")
NODES = 2
EDGES = 5  # node 0: inputs 0, 1; node 1: inputs 0, 1, node 0


def _alpha(entries):
    """α of one cell: zeros, with `{(edge, op): logit}` set."""
    alpha = np.zeros((EDGES, len(OPS)))
    for (edge, op), value in entries.items():
        alpha[edge, OPS.index(op)] = value
    return alpha


# Edge 1 has 'zero' strongest; node 1 prefers inputs 1 and 2 under equal β.
NORMAL = _alpha(
    {
        (0, "bconv_3x3"): 5,
        (1, "zero"): 10,
        (1, "bconv_5x5"): 3,
        (2, "max_pool_3x3"): 1,
        (3, "bconv_3x3"): 4,
        (4, "skip"): 6,
    }
)
REDUCE = _alpha(
    {
        (0, "max_pool_3x3"): 4,
        (1, "bconv_5x5"): 4,
        (2, "bconv_3x3"): 5,
        (3, "zero"): 20,
        (3, "skip"): 1,
        (4, "bconv_5x5"): 2,
    }
)


def _derive(normal=NORMAL, reduce=REDUCE, betas=None, **kwargs):
    betas = betas or {"normal": np.zeros(EDGES), "reduce": np.zeros(EDGES)}
    return derive({"normal": normal, "reduce": reduce}, betas, OPS, NODES, **kwargs)


def _genotype(normal=None, reduce=None, nodes=NODES):
    default = (("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    return Genotype(nodes, normal or default, reduce or default)


# --- derivation -----------------------------------------------------------------------


def test_derive_keeps_the_two_strongest_inputs_and_ops_per_node():
    genotype = _derive()
    assert genotype.nodes == NODES
    assert genotype.normal == (
        ("bconv_3x3", 0),
        ("bconv_5x5", 1),
        ("bconv_3x3", 1),
        ("skip", 2),
    )
    # reduce edge 3 is mostly 'zero', so node 1 keeps inputs 0 and 2
    assert genotype.reduce == (
        ("max_pool_3x3", 0),
        ("bconv_5x5", 1),
        ("bconv_3x3", 0),
        ("bconv_5x5", 2),
    )
    assert genotype.capped == 0


def test_derive_never_chooses_zero_even_where_its_alpha_is_largest():
    everywhere_zero = NORMAL.copy()
    everywhere_zero[:, OPS.index("zero")] = 50.0
    genotype = _derive(normal=everywhere_zero, reduce=everywhere_zero)
    for kind in ("normal", "reduce"):
        assert all(op != "zero" for op, _ in getattr(genotype, kind))
    # the strongest op other than zero on edge 1 is still bconv_5x5
    assert genotype.normal[1] == ("bconv_5x5", 1)


def test_derive_beta_changes_which_inputs_a_node_keeps():
    betas = {"normal": np.array([0, 0, 5.0, 0, 3.0]), "reduce": np.zeros(EDGES)}
    genotype = _derive(betas=betas)
    # node 1: β favours inputs 0 and 2 over the stronger α of input 1
    assert genotype.normal[2:] == (("max_pool_3x3", 0), ("skip", 2))
    assert _derive().normal[2:] == (("bconv_3x3", 1), ("skip", 2))
    # β on node 0 cannot drop anything: both inputs are kept
    betas["normal"] = np.array([-9.0, 9.0, 0, 0, 0])
    assert _derive(betas=betas).normal[:2] == (("bconv_3x3", 0), ("bconv_5x5", 1))


# Skip (or pooling) strongest on every normal edge; the strongest binary conv of
# each edge differs, and edge 0 has the strongest parameter-free op of all.
COLLAPSED = _alpha(
    {
        (0, "skip"): 8,
        (0, "bconv_3x3"): 1,
        (1, "max_pool_3x3"): 5,
        (1, "bconv_5x5"): 1,
        (2, "skip"): 5,
        (2, "bconv_5x5"): 1,
        (3, "skip"): 5,
        (3, "bconv_3x3"): 1,
        (4, "skip"): 2,
        (4, "bconv_3x3"): 1,
    }
)


def test_collapse_guard_replaces_the_weakest_parameter_free_ops_with_binary_convs():
    uncapped = _derive(normal=COLLAPSED, reduce=COLLAPSED, max_parameter_free=None)
    assert uncapped.normal == (
        ("skip", 0),
        ("max_pool_3x3", 1),
        ("skip", 0),
        ("skip", 1),
    )
    assert uncapped.capped == 0
    free = uncapped.parameter_free("normal")
    assert free == 4

    capped = _derive(normal=COLLAPSED, reduce=COLLAPSED, max_parameter_free=1)
    assert capped.capped == free - 1
    assert capped.parameter_free("normal") == 1
    assert capped.normal == (
        ("skip", 0),
        ("bconv_5x5", 1),
        ("bconv_5x5", 0),
        ("bconv_3x3", 1),
    )
    # the guard only touches normal cells
    assert capped.reduce == uncapped.reduce == uncapped.normal
    assert capped.parameter_free("reduce") == 4


def test_collapse_guard_default_cap_is_two():
    genotype = _derive(normal=COLLAPSED, reduce=COLLAPSED)
    assert genotype.capped == 2
    assert genotype.parameter_free("normal") == 2
    # the two strongest parameter-free ops stay: edge 0 (α 8) and edge 1 (β 1/2)
    assert genotype.normal[:2] == (("skip", 0), ("max_pool_3x3", 1))


def test_collapse_guard_leaves_cells_within_the_cap():
    genotype = _derive(normal=COLLAPSED, reduce=COLLAPSED, max_parameter_free=4)
    assert genotype.capped == 0
    assert genotype.parameter_free("normal") == 4


# --- JSON -----------------------------------------------------------------------------


def test_genotype_json_round_trip(tmp_path):
    genotype = _derive(normal=COLLAPSED, max_parameter_free=1)
    data = genotype.to_json()
    assert data["nodes"] == NODES
    assert data["normal"][0] == ["skip", 0]
    assert data["capped"] == 3

    text = json.dumps(data)
    restored = Genotype.from_json(json.loads(text))
    assert restored == genotype
    assert restored.capped == 3
    assert restored.normal == genotype.normal and restored.reduce == genotype.reduce

    path = tmp_path / "genotype.json"
    path.write_text(text)
    loaded = Genotype.load(path)
    assert loaded == genotype
    assert loaded.capped == 3
    assert loaded.to_json() == data


def test_genotype_equality_ignores_capped_and_compares_pairs():
    pairs = (("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    assert Genotype(2, pairs, pairs, capped=1) == Genotype(2, pairs, pairs)
    assert Genotype(2, [list(p) for p in pairs], pairs) == Genotype(2, pairs, pairs)
    other = (("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 1))
    assert Genotype(2, pairs, other) != Genotype(2, pairs, pairs)


def test_from_json_without_a_cell_raises_value_error():
    with pytest.raises(ValueError, match="Not a UBNAS genotype"):
        Genotype.from_json({"nodes": 2, "normal": []})


# --- errors ---------------------------------------------------------------------------


def test_unknown_op_in_genotype_names_it_and_lists_the_valid_ops():
    normal = (("conv_7x7", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    with pytest.raises(ValueError) as error:
        _genotype(normal=normal)
    message = str(error.value)
    assert "'conv_7x7'" in message
    for name in space.OPS:
        assert name in message


def test_misspelt_op_in_genotype_suggests_the_near_miss():
    normal = (("bconv3x3", 0), ("skip", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    with pytest.raises(ValueError, match=r"'bconv3x3'.*did you mean 'bconv_3x3'"):
        _genotype(normal=normal)


def test_genotype_with_wrong_number_of_pairs_raises():
    with pytest.raises(ValueError, match=r"normal cell has 3 .*expected.*4"):
        _genotype(normal=(("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 0)))
    with pytest.raises(ValueError, match=r"reduce cell has 4 .*expected.*6"):
        _genotype(
            normal=(("skip", 0),) * 6,
            reduce=(("skip", 0),) * 4,
            nodes=3,
        )


@pytest.mark.parametrize("source", [2, -1])
def test_genotype_input_out_of_range_raises(source):
    normal = (("bconv_3x3", 0), ("skip", source), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    with pytest.raises(ValueError, match=rf"node 0 has \('skip', {source}\).*0\.\.1"):
        _genotype(normal=normal)
    # node 1 may take node 0 (input 2) but not input 3
    reduce = (("bconv_3x3", 0), ("skip", 1), ("max_pool_3x3", 3), ("bconv_5x5", 2))
    with pytest.raises(ValueError, match=r"reduce node 1 .*0\.\.2"):
        _genotype(reduce=reduce)


def test_genotype_with_zero_op_raises():
    normal = (("bconv_3x3", 0), ("zero", 1), ("max_pool_3x3", 0), ("bconv_5x5", 2))
    with pytest.raises(ValueError, match=r"\('zero', 1\).*other than 'zero'"):
        _genotype(normal=normal)


def test_check_ops_refuses_repeats_and_unknown_names():
    assert space.check_ops(["zero", "skip"]) == ("zero", "skip")
    with pytest.raises(ValueError, match=r"repeat \['skip'\]"):
        space.check_ops(["zero", "skip", "bconv_3x3", "skip"])
    with pytest.raises(ValueError, match="offer no choice"):
        space.check_ops(["skip"])
    with pytest.raises(ValueError, match=r"'max_pool'.*expected one of"):
        space.check_ops(["zero", "max_pool"])


def test_derive_without_zero_raises():
    ops = OPS[1:]
    alpha = np.zeros((EDGES, len(ops)))
    with pytest.raises(ValueError, match="without 'zero'"):
        derive(
            {"normal": alpha, "reduce": alpha},
            {"normal": np.zeros(EDGES), "reduce": np.zeros(EDGES)},
            ops,
            NODES,
        )


def test_check_channels_refuses_grouped_convs_lce_cannot_fuse():
    message = r"'group_bconv_3x3' in cell 0 has 48 channels"
    with pytest.raises(ValueError, match=message) as error:
        space.check_channels(["group_bconv_3x3"], 48, "cell 0")
    assert "32" in str(error.value)
    space.check_channels(["group_bconv_3x3"], 64, "cell 0")
    space.check_channels(["bconv_3x3", "skip"], 8, "cell 0")
