"""Atomic keras-tuner project files, and a reload that survives a kill.

keras-tuner writes `oracle.json`, each `trial_<id>/trial.json` and
`tuner0.json` in place, so a search killed while saving leaves a half-written
file that the next `reload` cannot parse. The mixins here write them to a
temporary sibling and rename it onto the file (`keras_bnn_af._files.write_atomic`;
on a remote file system, `gs://...`, keras-tuner's own write is kept), and
reload what an older, in-place version may have left behind.

```python
class MyOracle(AtomicOracleFiles, keras_tuner.Oracle): ...
class MyTuner(AtomicTunerFiles, keras_tuner.Tuner): ...
```
"""

import json
import os
import warnings
from pathlib import Path
from typing import Any

from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.src import utils as tuner_utils
from keras_tuner.src.backend import io as tuner_io

from keras_bnn_af._files import write_atomic

__all__ = ["AtomicOracleFiles", "AtomicTunerFiles", "save_json"]


class AtomicOracleFiles:
    """Mixin for a `keras_tuner.Oracle`: atomic saves, and a kill-proof `reload`."""

    def save(self) -> None:
        """Writes the state to `oracle.json`, atomically."""
        save_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial) -> None:
        """Writes `trial_<id>/trial.json`, atomically."""
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        save_json(path, trial.get_state())

    def reload(self) -> None:
        """Reloads the trials and the state, as `keras_tuner.Oracle.reload`.

        The trials that were running run again, except one whose
        `trial.json` records its end (COMPLETED or FAILED): keras-tuner saves
        an ending trial's file, then the state still listing it as running,
        and a search killed in between would train a finished trial again.

        A `trial.json` that does not parse (half-written by a search killed
        while saving it, before these saves were atomic) belongs to a trial
        that had not ended: keras-tuner writes it before the state that records
        the end. With a `UserWarning` naming the file, that trial is dropped:
        its genome and any result went with the file, so its trial ID runs a
        new candidate. A finished trial is never dropped: an unreadable file of
        a trial the state records as ended is an error.

        # Raises
            ValueError: `oracle.json` does not parse, or an unreadable
                `trial.json` cannot be dropped (the trial had ended, or later
                trials exist, as with parallel workers).
        """
        unreadable = {}
        pattern = os.path.join(self._project_dir, "trial_*", "trial.json")
        for fname in sorted(tuner_io.glob(pattern)):
            try:
                trial = Trial.load(fname)
            except json.JSONDecodeError:
                unreadable[Path(fname).parent.name.removeprefix("trial_")] = fname
                continue
            self.trials[trial.trial_id] = trial
        fname = self._get_oracle_fname()
        try:
            state = tuner_utils.load_json(fname)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"Cannot resume the search in {self._project_dir!r}: its state "
                f"{fname!r} does not parse ({error}); a search killed while saving "
                "it, before these saves were atomic, leaves it half-written. "
                "Expected a complete JSON file. The state (population, random "
                "generator) is lost: start a new search (another folder, or "
                "overwrite=True)."
            ) from None
        for trial_id, trial_file in unreadable.items():
            self._drop_unended_trial(state, trial_id, trial_file)
        try:
            self.set_state(state)
        except KeyError as error:  # as keras-tuner reports it
            raise RuntimeError(
                "Error reloading `Oracle` from existing project. If you did not "
                "mean to reload from an existing project, change the "
                "`project_name` or pass `overwrite=True` when creating the "
                f"`Tuner`. Found existing project at: {self._project_dir}"
            ) from error
        # The trials that were running run again, as in keras-tuner; but not
        # one whose end was saved: keras-tuner writes its trial.json, then the
        # state with it ended yet still running, and forgets it only after.
        for trial in self.ongoing_trials.values():
            if trial.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED):
                self._retry_queue.append(trial.trial_id)
            elif trial.trial_id not in self.end_order:
                self.end_order.append(trial.trial_id)
        self.ongoing_trials = {}

    def _drop_unended_trial(self, state: dict, trial_id: str, fname: str) -> None:
        """Removes from `state` a trial whose `trial.json` was lost (`reload`)."""
        later = [other for other in self.trials if int(other) > int(trial_id)]
        if trial_id in state["end_order"] or later:
            why = (
                "the search had recorded its end"
                if trial_id in state["end_order"]
                else f"later trials {sorted(later)} exist, so its ID cannot run again"
            )
            raise ValueError(
                f"Cannot resume the search in {self._project_dir!r}: {fname!r} does "
                f"not parse (half-written), and trial {trial_id} cannot be dropped: "
                f"{why}. Expected a complete JSON file. Restore the file, or start "
                "a new search (another folder, or overwrite=True)."
            )
        warnings.warn(
            f"{fname!r} does not parse: it was half-written by a search killed "
            f"while saving it. Trial {trial_id} had not ended; its genome and any "
            "result are lost with the file, and a new candidate runs as trial "
            f"{trial_id}. Nothing to do: finished trials are all kept.",
            stacklevel=2,
        )
        state["ongoing_trials"] = {
            tuner: other
            for tuner, other in state["ongoing_trials"].items()
            if other != trial_id
        }
        for key in ("start_order", "retry_queue"):
            state[key] = [other for other in state[key] if other != trial_id]
        state["run_times"].pop(trial_id, None)
        lost = state["id_to_hash"].pop(trial_id, None)
        state["tried_so_far"] = [h for h in state["tried_so_far"] if h != lost]
        self._forget_trial_state(state, trial_id)

    def _forget_trial_state(self, state: dict, trial_id: str) -> None:
        """Removes a dropped trial from a subclass's own part of `state`."""


class AtomicTunerFiles:
    """Mixin for a `keras_tuner.Tuner`: saves its oracle and file atomically."""

    def save(self) -> None:
        """Saves the oracle and this tuner's file (`tuner0.json`), atomically."""
        if not self._is_worker():
            self.oracle.save()
        save_json(self._get_tuner_fname(), self.get_state())

    def reload(self) -> None:
        """Reloads the oracle and this tuner (`keras_tuner.Tuner.reload`).

        A `tuner0.json` half-written by an older version (saved in place) is
        ignored: the tuner's state is empty (`{}`), so nothing is lost.
        """
        if not self._is_worker():
            self.oracle.reload()
        try:
            state = tuner_utils.load_json(self._get_tuner_fname())
        except json.JSONDecodeError:
            if self.get_state():
                raise
            state = {}
        self.set_state(state)


def save_json(path: str, state: dict[str, Any]) -> None:
    """Writes `state` as keras-tuner does, but atomically on a local path."""
    if "://" in path:  # a remote file system (gs://...): keras-tuner's own write
        tuner_utils.save_json(path, state)
    else:
        write_atomic(path, json.dumps(state))
