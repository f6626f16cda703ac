"""Timing helpers shared by the bench scripts (`training.py`,
`gan_training.py`): the clocks and the interleaved fit/fused timer."""

import time

import keras
import numpy as np

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def add_clock_argument(parser):
    """`--clock wall|cpu` on an argparse parser."""
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time, or process CPU time (less sensitive to other "
        "processes on a shared machine)",
    )


class InterleavedTimer(keras.callbacks.Callback):
    """Times each fit epoch, then runs and times one fused epoch.

    Fit epochs and fused epochs alternate, so load changes on a shared
    machine hit both alike.

    Args:
        fused_epoch: Callable running one epoch of the hand-written step.
        clock: `"wall"` (`time.perf_counter`) or `"cpu"` (the process's
            CPU time, less sensitive to other processes).
    """

    def __init__(self, fused_epoch, clock="wall"):
        super().__init__()
        self.fused_epoch = fused_epoch
        self.clock = CLOCKS[clock]
        self.fit_times = []
        self.fused_times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self.fit_times.append(self.clock() - self._start)
        start = self.clock()
        self.fused_epoch()
        self.fused_times.append(self.clock() - start)

    def medians(self):
        """Median fit and fused epoch times and the median of their
        per-epoch ratios, without the first (warm-up) epoch."""
        fit_t = np.asarray(self.fit_times[1:])
        fused_t = np.asarray(self.fused_times[1:])
        return (
            float(np.median(fit_t)),
            float(np.median(fused_t)),
            float(np.median(fit_t / fused_t)),
        )
