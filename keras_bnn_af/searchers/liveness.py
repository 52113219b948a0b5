"""A dead worker does not stall a distributed search: heartbeats and a timeout.

In keras-tuner's chief/worker mode (1.4.8), the chief serves the oracle over
gRPC and exits only when a worker was told `"STOPPED"`, no trial is running
(`oracle.ongoing_trials`, by tuner ID) and every worker that asked for a trial
was told `"STOPPED"` (`oracle.tuner_ids`); it checks that every 20 s
(`keras_tuner/src/distribute/oracle_chief.py`). A worker killed mid-trial
(SIGKILL, out of memory, a preempted machine) never ends its trial nor asks
again, so the chief waits forever, with the trial RUNNING.

The two mixins here fix that with keras-tuner's existing requests (its gRPC
service is fixed):

- `LivenessTuner` (a worker): while a trial runs, a daemon thread sends an
  `update_trial(trial_id, {})` (no metrics: a heartbeat) every
  `heartbeat_interval` seconds, so a long trial shows it is alive even between
  epochs.
- `LivenessOracle` (the chief): every request of a worker (`create_trial`,
  `update_trial`, `end_trial`) records when the worker was last seen. A worker
  silent for more than `worker_timeout` seconds is dead: its trial is ended as
  `"INVALID"` (keras-tuner's retry: re-queued while `max_retries_per_trial`
  allows, else `"FAILED"`, with a message naming the worker, the timeout and
  the fix) and the worker is forgotten (`tuner_ids`), so the chief can finish.
  The check runs on every `create_trial` (a re-queued trial goes to the worker
  asking) and, on the chief, in a watchdog thread every `heartbeat_interval`
  seconds: when the other workers have finished, nobody asks any more.

```python
class MyOracle(LivenessOracle, keras_tuner.Oracle): ...
class MyTuner(LivenessTuner, keras_tuner.Tuner): ...
oracle = MyOracle(..., worker_timeout=600, heartbeat_interval=60)
```

A late message from a worker declared dead (it was only paused, or cut off)
changes nothing: its heartbeats, metrics and `end_trial` for the trial taken
from it are ignored with a warning, and its next `create_trial` gets a new
trial. Limitation: once its re-queued trial runs on another worker, the two
cannot be told apart (keras-tuner's `update_trial` and `end_trial` carry no
tuner ID), so a late `end_trial` would end the new run.

Last-seen times are monotonic (`time.monotonic`), so they are runtime-only:
a reloaded chief gives every worker a fresh time on its first check (and
keras-tuner's `reload` re-queues the trials that were running anyway).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import keras_tuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.src.distribute import utils as dist_utils

__all__ = [
    "DEFAULT_WORKER_TIMEOUT",
    "LivenessOracle",
    "LivenessTuner",
    "pop_liveness_settings",
]

#: Seconds a worker may stay silent before its trial is ended (10 minutes).
DEFAULT_WORKER_TIMEOUT = 600.0
#: The heartbeat interval, as a fraction of `worker_timeout`, when not given.
HEARTBEAT_FRACTION = 10
#: The keywords `LivenessOracle` takes (`pop_liveness_settings`).
SETTINGS = ("worker_timeout", "heartbeat_interval", "clock")


def pop_liveness_settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Removes and returns the `LivenessOracle` keywords found in `kwargs`."""
    return {name: kwargs.pop(name) for name in SETTINGS if name in kwargs}


class LivenessOracle:
    """Mixin for a `keras_tuner.Oracle`: ends the trials of dead workers.

    See the module's docstring for the protocol. A dead worker's trial ends as
    keras-tuner ends a crashed one, so it counts towards `max_retries_per_trial`
    and, once FAILED, towards `max_consecutive_failed_trials`; when that limit
    is reached here, with no worker to raise the error to, it is a warning.

    # Arguments
        worker_timeout: seconds a worker may stay silent (no heartbeat, no
            request) before its trial is ended; None never ends one. Default:
            `DEFAULT_WORKER_TIMEOUT` (600). Raise it if the workers cannot
            send heartbeats (a tuner that is not a `LivenessTuner`).
        heartbeat_interval: seconds between a worker's heartbeats, at most
            `worker_timeout / 2`; None for `worker_timeout / 10`.
        clock: monotonic seconds (`time.monotonic`); tests inject a fake one.
        *args, **kwargs: the other class's arguments.

    # Raises
        ValueError: for a timeout or interval that is not a positive finite
            number, or an interval above half the timeout.
    """

    def __init__(
        self,
        *args,
        worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT,
        heartbeat_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs,
    ):
        self.worker_timeout, self.heartbeat_interval = _check_liveness_settings(
            worker_timeout, heartbeat_interval
        )
        self._clock = clock
        # tuner_id -> the clock when it last sent a request (runtime-only).
        self._last_seen: dict[str, float] = {}
        # trial_id -> tuner_id, for the trials taken from dead workers.
        self._taken_trials: dict[str, str] = {}
        self._watchdog: tuple[threading.Thread, threading.Event] | None = None
        super().__init__(*args, **kwargs)

    # --- requests ----------------------------------------------------------------

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str):
        """Records `tuner_id` as alive, ends dead workers' trials, then creates.

        Ending them first lets the worker asking take a re-queued trial.
        """
        self._last_seen[tuner_id] = self._clock()
        self.end_dead_workers()
        return super().create_trial(tuner_id)

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics, step=0):
        """Records a heartbeat (no `metrics`) or the metrics of a trial.

        Requests for a trial taken from a dead worker are ignored with a
        warning (see the module's docstring).
        """
        self._seen_running(trial_id)
        trial = self.trials[trial_id]
        if self._late(trial_id, "update_trial"):
            return trial
        if not metrics:  # a heartbeat; keras-tuner would reject it (no objective)
            return trial
        return super().update_trial(trial_id, metrics, step=step)

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """Ends a trial, unless it was taken from a dead worker (a warning)."""
        self._seen_running(trial.trial_id)
        if self._late(trial.trial_id, "end_trial"):
            return
        super().end_trial(trial)

    # --- the check ---------------------------------------------------------------

    @keras_tuner.synchronized
    def end_dead_workers(self) -> list[str]:
        """Ends the trials of the workers silent for more than `worker_timeout`.

        A worker not seen yet since this process started (a reloaded chief)
        counts as seen now.

        # Returns
            The tuner IDs declared dead, forgotten with their trials.
        """
        if self.worker_timeout is None:
            return []
        now = self._clock()
        dead = []
        for tuner_id in sorted(set(self.tuner_ids) | set(self.ongoing_trials)):
            silent = now - self._last_seen.setdefault(tuner_id, now)
            if silent > self.worker_timeout:
                self._end_dead_worker(tuner_id, silent)
                dead.append(tuner_id)
        return dead

    def start_watchdog(self) -> None:
        """Runs `end_dead_workers` every `heartbeat_interval` s in a daemon thread.

        For the chief: when the other workers are done, nobody calls
        `create_trial`, yet the chief still waits for the dead worker.
        """
        if self.worker_timeout is None or self._watchdog is not None:
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(stop,), name="liveness-watchdog", daemon=True
        )
        self._watchdog = (thread, stop)
        thread.start()

    def stop_watchdog(self) -> None:
        """Stops the thread of `start_watchdog`, if any."""
        if self._watchdog is not None:
            thread, stop = self._watchdog
            stop.set()
            thread.join()
            self._watchdog = None

    # --- helpers -----------------------------------------------------------------

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                self.end_dead_workers()
            except Exception as error:  # keep watching
                warnings.warn(f"The liveness check failed: {error!r}", stacklevel=1)

    def _seen_running(self, trial_id: str) -> None:
        for tuner_id, trial in self.ongoing_trials.items():
            if trial.trial_id == trial_id:
                self._last_seen[tuner_id] = self._clock()

    def _late(self, trial_id: str, request: str) -> bool:
        """Whether a request is for a trial taken from a dead worker (warned)."""
        tuner_id = self._taken_trials.get(trial_id)
        running = any(t.trial_id == trial_id for t in self.ongoing_trials.values())
        if tuner_id is None or running:
            return False
        warnings.warn(
            f"Ignored {request} for trial {trial_id}: it was taken from worker "
            f"{tuner_id!r}, silent for more than worker_timeout="
            f"{self.worker_timeout} s, and ended (status "
            f"{self.trials[trial_id].status}). The worker was alive after all; if "
            "its trials legitimately go silent that long, raise worker_timeout.",
            stacklevel=3,
        )
        return True

    def _end_dead_worker(self, tuner_id: str, silent: float) -> None:
        """Ends the trial of `tuner_id` as keras-tuner ends a crashed one."""
        trial = self.ongoing_trials.get(tuner_id)
        if trial is not None:  # else it died between trials
            self._end_taken_trial(tuner_id, trial, silent)
        self.tuner_ids.discard(tuner_id)  # else the chief waits for it to stop
        self._last_seen.pop(tuner_id, None)

    def _end_taken_trial(self, tuner_id: str, trial, silent: float) -> None:
        # keras-tuner re-queues an INVALID trial run fewer than 1 + retries times.
        requeued = self._run_times[trial.trial_id] < self.max_retries_per_trial
        outcome = "re-queued" if requeued else "marked FAILED (no retry left)"
        message = (
            f"Trial {trial.trial_id} was {outcome}: its worker {tuner_id!r} sent "
            f"nothing for {silent:.1f} s, more than worker_timeout="
            f"{self.worker_timeout} s, and is taken for dead. If its trials "
            "legitimately go silent that long (heartbeats every "
            f"{self.heartbeat_interval} s from a LivenessTuner), raise "
            "worker_timeout."
        )
        warnings.warn(message, stacklevel=4)
        trial.status = TrialStatus.INVALID
        trial.message = message
        self._taken_trials[trial.trial_id] = tuner_id
        try:
            self.end_trial(trial)
        except RuntimeError as error:  # max_consecutive_failed_trials reached
            warnings.warn(str(error), stacklevel=4)
            self._save_trial(trial)
        finally:
            self.ongoing_trials.pop(tuner_id, None)
        self.save()


class LivenessTuner:
    """Mixin for a `keras_tuner.Tuner` of a `LivenessOracle`: heartbeats, watchdog.

    A distributed worker sends heartbeats while each trial runs (see the
    module's docstring); the chief runs the oracle's watchdog during `search`.
    A single-process search does neither: its one tuner cannot die alone.
    """

    def __init__(self, oracle, *args, **kwargs):
        # On a worker, keras-tuner replaces the oracle with an `OracleClient`,
        # which hides its settings: keep the interval before it does.
        self._heartbeat_interval = getattr(oracle, "heartbeat_interval", None)
        self._heartbeat: tuple[threading.Thread, threading.Event] | None = None
        super().__init__(oracle, *args, **kwargs)

    def search(self, *args, **kwargs):
        if dist_utils.is_chief_oracle() and hasattr(self.oracle, "start_watchdog"):
            self.oracle.start_watchdog()
            try:
                return super().search(*args, **kwargs)
            finally:
                self.oracle.stop_watchdog()
        return super().search(*args, **kwargs)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        if self._heartbeat_interval is not None and self._is_worker():
            stop = threading.Event()
            thread = threading.Thread(
                target=self._send_heartbeats,
                args=(trial.trial_id, stop),
                name=f"heartbeat-{trial.trial_id}",
                daemon=True,
            )
            self._heartbeat = (thread, stop)
            thread.start()

    def on_trial_end(self, trial):
        if self._heartbeat is not None:  # stopped before the trial's end is sent
            thread, stop = self._heartbeat
            stop.set()
            thread.join()
            self._heartbeat = None
        super().on_trial_end(trial)

    def _send_heartbeats(self, trial_id: str, stop: threading.Event) -> None:
        failed = False
        while not stop.wait(self._heartbeat_interval):
            try:
                answer = self.oracle.update_trial(trial_id, {})
            except Exception as error:  # the chief may be restarting
                if not failed:
                    warnings.warn(f"A heartbeat failed: {error!r}", stacklevel=1)
                failed = True
                continue
            if answer.status in (TrialStatus.INVALID, TrialStatus.FAILED):
                warnings.warn(
                    f"The chief took trial {trial_id} from this worker "
                    f"({self.tuner_id!r}) for dead: its result will be ignored. "
                    "Raise worker_timeout if the heartbeats were too late.",
                    stacklevel=1,
                )
                return


def _check_liveness_settings(
    worker_timeout: float | None, heartbeat_interval: float | None
) -> tuple[float | None, float | None]:
    """The checked `(worker_timeout, heartbeat_interval)`; see `LivenessOracle`."""
    for name, value in (
        ("worker_timeout", worker_timeout),
        ("heartbeat_interval", heartbeat_interval),
    ):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value) and value > 0):
            raise ValueError(
                f"{name}={value!r} is not a duration. Expected a positive finite "
                f"number of seconds, or None. Pass e.g. {name}=600."
            )
    if worker_timeout is None:
        if heartbeat_interval is not None:
            raise ValueError(
                f"heartbeat_interval={heartbeat_interval!r} was given with "
                "worker_timeout=None. Expected a worker_timeout: heartbeats only "
                "serve it. Pass worker_timeout (e.g. 600), or drop "
                "heartbeat_interval."
            )
        return None, None
    if heartbeat_interval is None:
        return float(worker_timeout), worker_timeout / HEARTBEAT_FRACTION
    if heartbeat_interval > worker_timeout / 2:
        raise ValueError(
            f"heartbeat_interval={heartbeat_interval!r} is above half of "
            f"worker_timeout={worker_timeout!r}. Expected at most worker_timeout / "
            "2, so that one late heartbeat does not get a live worker declared "
            f"dead. Pass heartbeat_interval <= {worker_timeout / 2:g}, or raise "
            "worker_timeout."
        )
    return float(worker_timeout), float(heartbeat_interval)
