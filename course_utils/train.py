"""Training-loop plumbing: an epoch progress bar with live losses, a loss history, and a timer."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterator

from tqdm.auto import tqdm


class History(defaultdict):
    """A dict of lists: history.log(loss=0.3, kl=0.1) appends one value per name."""

    def __init__(self) -> None:
        super().__init__(list)

    def log(self, **values: float) -> None:
        """Append one value per named metric."""
        for name, value in values.items():
            self[name].append(float(value))

    def last(self) -> dict[str, float]:
        """The latest value of every metric."""
        return {name: values[-1] for name, values in self.items() if values}


def epochs(n: int, desc: str = "train", history: History | None = None) -> Iterator[int]:
    """Iterate over epochs with a tqdm bar whose postfix shows the latest values in `history`."""
    bar = tqdm(total=n, desc=desc, leave=False, mininterval=0.5)
    try:
        for epoch in range(n):
            yield epoch
            if history:
                bar.set_postfix({k: f"{v:.4g}" for k, v in history.last().items()}, refresh=False)
            bar.update(1)
        bar.refresh()  # the last state is drawn even when the loop ran faster than mininterval
    finally:
        bar.close()


class Timer:
    """Context manager that measures wall time: `with Timer() as t: ...; t.seconds`."""

    def __enter__(self) -> "Timer":
        self.start, self.seconds = time.perf_counter(), 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
