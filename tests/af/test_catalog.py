"""The AF catalog: built-in entries, user entries, catalog files."""

import json
import re

import numpy as np
import pytest

from keras_bnn_af import af
from keras_bnn_af.af.syntax import SLUG

# --- catalog -------------------------------------------------------------------------


def test_builtin_catalog_entries_are_canonical_and_consistent():
    entries = af.catalog()
    assert {"identity", "sin_x", "cos_x", "x_plus_sin_x", "x_times_cos_x"} <= set(
        entries
    )
    learnable = [e for e in entries.values() if af.parameters(af.parse(e.formula))]
    assert len(learnable) >= 2
    grid = np.linspace(-6, 6, 241)
    for name, entry in entries.items():
        assert entry.builtin and af.lookup(name) == entry
        tree = af.parse(entry.formula)
        assert af.to_formula(tree) == entry.formula
        assert af.resolve(name) == tree
        assert "GAAF" in entry.provenance
        assert "not one of the paper's 15" in entry.provenance or name == "identity"
        if SLUG.fullmatch(name):
            assert af.parse_slug(name) == tree, name
        genome_tree = af.from_genome(entry.genome)
        np.testing.assert_allclose(
            af.evaluate_numpy(genome_tree, grid), af.evaluate_numpy(tree, grid)
        )


def test_builtin_catalog_file_is_plain_json():
    from importlib import resources

    raw = json.loads(
        resources.files("keras_bnn_af.af").joinpath("catalog.json").read_text()
    )
    assert raw["version"] == 1
    assert {entry["name"] for entry in raw["entries"]} == set(af.catalog())


@pytest.fixture
def user_catalog(monkeypatch):
    monkeypatch.setattr(af.default_catalog(), "_user", {})


def test_user_entries_add_look_up_save_and_load(user_catalog, tmp_path):
    entry = af.add_entry(
        "found_1", "x+sin( x)*2", "unit test", command="search --seed 0", score=0.5
    )
    assert entry.formula == "x + sin(x) * 2" and not entry.builtin
    assert af.lookup("found_1") == entry and "found_1" in af.catalog()
    assert af.resolve("found_1") == af.parse("x + sin(x) * 2")
    path = af.save_catalog(tmp_path / "mine.json")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        af.save_catalog(path)
    assert af.save_catalog(path, overwrite=True) == path
    af.remove_entry("found_1")
    assert "found_1" not in af.catalog()
    assert af.load_catalog(path) == [entry]
    assert af.lookup("found_1") == entry


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("sin_x", "cos(x)", "p"), "belongs to a built-in entry"),
        (("Bad Name", "x", "p"), "is not valid"),
        (("ok_name", "x", " "), "non-empty text"),
        (("ok_name", "x +", "p"), "at position 3"),
        (("ok_name", "x", "p", None, "high"), "expected a number or None"),
    ],
)
def test_bad_user_entries_are_refused(user_catalog, args, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        af.add_entry(*args)


def test_duplicate_user_entry_needs_overwrite(user_catalog):
    af.add_entry("mine", "x", "p")
    with pytest.raises(ValueError, match="overwrite=True"):
        af.add_entry("mine", "sin(x)", "p")
    assert af.add_entry("mine", "sin(x)", "p", overwrite=True).formula == "sin(x)"


def test_unknown_names_and_bad_catalog_files(user_catalog, tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'sin_x'") as error:
        af.lookup("sin_xx")
    assert "x_plus_sin_x" in str(error.value)
    path = tmp_path / "bad.json"
    path.write_text('{"entries": 3}')
    with pytest.raises(ValueError, match="Cannot read the AF catalog"):
        af.load_catalog(path)
    with pytest.raises(ValueError, match="No user catalog entry 'sin_x'"):
        af.remove_entry("sin_x")


def test_a_catalog_file_keeps_what_was_added_and_removed(tmp_path):
    path = tmp_path / "found.json"
    mine = af.Catalog(path)
    assert not path.exists() and "sin_x" in mine and "found_1" not in mine
    entry = mine.add("found_1", "x-erfc(x)", "search run 3, trial 17", score=0.9)
    assert entry.formula == "x - erfc(x)" and mine["found_1"] == entry
    assert af.Catalog(path).user_entries == {"found_1": entry}  # saved at once
    mine.add("found_2", "sin(x)", "p")
    mine.remove("found_1")
    reopened = af.Catalog(path)
    assert list(reopened.user_entries) == ["found_2"]
    assert "found_1" not in af.catalog()  # the default catalog is another one
    assert len(reopened) == len(af.catalog()) + 1


def test_a_catalog_file_that_is_not_a_catalog_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"entries": [{"name": "Bad Name", "formula": "x"}]}')
    with pytest.raises(ValueError, match="Cannot read the AF catalog"):
        af.Catalog(path)
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "entries": [{"name": "sin_x", "formula": "x", "provenance": "p"}],
            }
        )
    )
    with pytest.raises(ValueError, match="belongs to a built-in entry"):
        af.Catalog(path)


def test_old_import_path_gives_the_same_language():
    from keras_bnn_af.quantizers import af as old

    assert old.parse is af.parse and old.catalog is af.catalog
    assert old.evaluate_tf is af.evaluate_tf
