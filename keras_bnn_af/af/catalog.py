"""Named activation functions: the built-in catalog and catalogs of your own.

```python
from keras_bnn_af.af import Catalog, catalog

catalog()["sin_x"].formula                 # 'sin(x)': the default catalog
mine = Catalog("found.json")               # a catalog kept in a file
mine.add("found_1", "x - erfc(x)", "GAAF search on MNIST-1D, trial 17")
mine["found_1"].formula                    # already saved to found.json
```

A `Catalog` holds the built-in entries (read-only, shipped as `catalog.json`)
plus user entries. Given a `path`, it reads the user entries from that file
and writes the file again (atomically) after every `add` and `remove`, so what
a search found survives the process. The *default catalog*, which names in
`resolve`, `GAAF("...")` and `gaaf:<name>` specs are looked up in, is kept in
memory; `add_entry`, `remove_entry`, `save_catalog` and `load_catalog` act on
it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from keras_bnn_af._errors import did_you_mean
from keras_bnn_af._files import write_atomic
from keras_bnn_af.af.genomes import from_genome
from keras_bnn_af.af.syntax import parse, to_formula

__all__ = [
    "Catalog",
    "CatalogEntry",
    "add_entry",
    "catalog",
    "default_catalog",
    "load_catalog",
    "lookup",
    "remove_entry",
    "save_catalog",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_BUILTIN_FILE = "catalog.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CatalogEntry:
    """A named AF: its canonical formula, where it comes from, and how it scored.

    # Arguments
        name: lower-case identifier, e.g. `"x_plus_sin_x"`.
        formula: canonical formula.
        provenance: where the AF comes from, stated honestly.
        command: the command that found or evaluated it, if any.
        score: its fitness or accuracy, if measured.
        genome: a GAAF genome computing the same function, if there is one.
        builtin: whether it ships with keras-bnn-af.
    """

    name: str
    formula: str
    provenance: str
    command: str | None = None
    score: float | None = None
    genome: tuple[int, ...] | None = None
    builtin: bool = False

    def to_json(self) -> dict:
        entry = dataclasses.asdict(self)
        del entry["builtin"]
        entry["genome"] = None if self.genome is None else list(self.genome)
        return entry


def make_entry(
    name: str,
    formula: str,
    provenance: str,
    command: str | None = None,
    score: float | None = None,
    genome: Sequence[int] | None = None,
    builtin: bool = False,
) -> CatalogEntry:
    """A validated entry with its formula made canonical.

    # Raises
        ValueError: for a bad name, formula, provenance, score or genome.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"Catalog name {name!r} is not valid; expected lower-case letters, digits "
            "and '_', starting with a letter, e.g. 'x_plus_sin_x'. Rename the entry."
        )
    if not isinstance(provenance, str) or not provenance.strip():
        raise ValueError(
            f"Catalog entry {name!r} got provenance {provenance!r}; expected a "
            "non-empty text saying where the AF comes from (paper, search run, ...)."
        )
    if score is not None and not isinstance(score, int | float):
        raise ValueError(
            f"Catalog entry {name!r} got score {score!r}; expected a number or None."
        )
    tree = parse(formula)
    if genome is not None:
        genome = tuple(int(g) for g in genome)
        from_genome(genome)  # validates
    return CatalogEntry(
        name=name,
        formula=to_formula(tree),
        provenance=provenance,
        command=command,
        score=None if score is None else float(score),
        genome=genome,
        builtin=builtin,
    )


class Catalog:
    """The built-in AFs plus user entries, optionally kept in a JSON file.

    # Arguments
        path: a catalog file (the format `save` writes). Its entries are read if
            it exists, and it is rewritten after every `add` and `remove`. None
            keeps the user entries in memory only.

    # Raises
        ValueError: `path` exists but is not a readable catalog file.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = None if path is None else Path(path)
        self._user: dict[str, CatalogEntry] = {}
        if self.path is not None and self.path.exists():
            self._user = {entry.name: entry for entry in _read_entries(self.path)}
            self._check_not_builtin(self._user)

    # --- reading ----------------------------------------------------------------

    def entries(self) -> dict[str, CatalogEntry]:
        """Name -> entry for every built-in and user entry (a copy)."""
        return {**_builtin(), **self._user}

    @property
    def user_entries(self) -> dict[str, CatalogEntry]:
        """Name -> entry for the user entries only (a copy)."""
        return dict(self._user)

    def __contains__(self, name: object) -> bool:
        return name in _builtin() or name in self._user

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.entries())

    def __getitem__(self, name: str) -> CatalogEntry:
        """The entry called `name`.

        # Raises
            ValueError: if there is none, listing the known names.
        """
        entries = self.entries()
        if name not in entries:
            hint = did_you_mean(name, entries)
            raise ValueError(
                f"No activation function named {name!r} in the catalog. Expected one "
                f"of {', '.join(sorted(entries))}.{hint} Add your own with `add`."
            )
        return entries[name]

    # --- changing ---------------------------------------------------------------

    def add(
        self,
        name: str,
        formula: str,
        provenance: str,
        command: str | None = None,
        score: float | None = None,
        *,
        genome: Sequence[int] | None = None,
        overwrite: bool = False,
    ) -> CatalogEntry:
        """Adds a user entry (and saves the catalog's file, if it has one).

        # Arguments
            name: lower-case identifier, e.g. `"found_042"`; built-in names are
                taken.
            formula: the AF formula; stored canonical.
            provenance: where it comes from, e.g. `"GAAF search run 3, trial 17"`.
            command: the command that found it.
            score: its fitness.
            genome: a GAAF genome computing the same function, if any.
            overwrite: replace an existing user entry of that name.

        # Raises
            ValueError: for a bad name, formula or provenance, or a name in use.
        """
        entry = make_entry(name, formula, provenance, command, score, genome)
        self._check_not_builtin({name: entry})
        if name in self._user and not overwrite:
            raise ValueError(
                f"Catalog already has a user entry {name!r} "
                f"({self._user[name].formula!r}); expected a new name. Pass "
                "overwrite=True to replace it."
            )
        self._user[name] = entry
        self._persist()
        return entry

    def remove(self, name: str) -> None:
        """Removes a user entry (and saves the catalog's file, if it has one)."""
        if name not in self._user:
            raise ValueError(
                f"No user catalog entry {name!r}; expected one of "
                f"{', '.join(sorted(self._user)) or '(none)'}. Built-in entries stay."
            )
        del self._user[name]
        self._persist()

    # --- files ------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Writes the user entries as JSON (the built-in file's format) to `path`.

        # Raises
            FileExistsError: `path` exists and `overwrite` is False.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"Catalog file {str(path)!r} already exists; expected a new path. "
                "Pass another path, or overwrite=True to replace it."
            )
        entries = [entry.to_json() for entry in self._user.values()]
        text = json.dumps({"version": _FORMAT_VERSION, "entries": entries}, indent=2)
        return write_atomic(path, text + "\n")

    def load(
        self, path: str | os.PathLike, *, overwrite: bool = False
    ) -> list[CatalogEntry]:
        """Adds the entries of a catalog file (see `save`) as user entries.

        # Raises
            ValueError: if the file is not a catalog, an entry is invalid, or a
                name is taken (unless `overwrite`).
        """
        return [
            self.add(**entry.to_json(), overwrite=overwrite)
            for entry in _read_entries(Path(path))
        ]

    def _persist(self) -> None:
        if self.path is not None:
            self.save(self.path, overwrite=True)

    @staticmethod
    def _check_not_builtin(entries: dict[str, CatalogEntry]) -> None:
        for name in entries:
            if name in _builtin():
                raise ValueError(
                    f"Catalog name {name!r} belongs to a built-in entry "
                    f"({_builtin()[name].formula!r}); expected a new name. Pick "
                    "another name."
                )


def _read_entries(path: Path) -> list[CatalogEntry]:
    try:
        items = json.loads(path.read_text())["entries"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError("'entries' is not a list of objects")
        return [make_entry(**item) for item in items]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"Cannot read the AF catalog {str(path)!r}: {type(error).__name__}: "
            f"{error}. Expected a JSON file {{'version': 1, 'entries': [...]}} as "
            "written by Catalog.save."
        ) from None


_BUILTIN: dict[str, CatalogEntry] | None = None


def _builtin() -> dict[str, CatalogEntry]:
    global _BUILTIN
    if _BUILTIN is None:
        text = resources.files(__package__).joinpath(_BUILTIN_FILE).read_text()
        entries = [
            make_entry(**raw, builtin=True) for raw in json.loads(text)["entries"]
        ]
        _BUILTIN = {entry.name: entry for entry in entries}
    return _BUILTIN


# --- the default catalog ------------------------------------------------------------

_DEFAULT = Catalog()


def default_catalog() -> Catalog:
    """The in-memory catalog that AF names are resolved in."""
    return _DEFAULT


def catalog() -> dict[str, CatalogEntry]:
    """Name -> entry for every built-in and user-added AF (a copy)."""
    return _DEFAULT.entries()


def lookup(name: str) -> CatalogEntry:
    """The default catalog's entry called `name` (see `Catalog.__getitem__`)."""
    return _DEFAULT[name]


def add_entry(*args, **kwargs) -> CatalogEntry:
    """Adds a user AF to the default catalog (see `Catalog.add`)."""
    return _DEFAULT.add(*args, **kwargs)


def remove_entry(name: str) -> None:
    """Removes a user entry from the default catalog (see `Catalog.remove`)."""
    _DEFAULT.remove(name)


def save_catalog(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Writes the default catalog's user entries to `path` (see `Catalog.save`)."""
    return _DEFAULT.save(path, overwrite=overwrite)


def load_catalog(
    path: str | os.PathLike, *, overwrite: bool = False
) -> list[CatalogEntry]:
    """Adds a catalog file's entries to the default catalog (see `Catalog.load`)."""
    return _DEFAULT.load(path, overwrite=overwrite)
