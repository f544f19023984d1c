"""A paid API model's spending cap: ``--model-arg gpt-4o.max_cost_usd=20``.

The cap is on the estimated cost of the answers the backend gets in this process (each
answer's ``usage["cost_usd"]``: its token counts at the prices it is priced at, README "Models,
strategies, cache"); answers read from the generation cache cost nothing. It is checked before
each request is sent, so the requests already in flight when it is reached (at most the model's
``concurrency`` less one) still come back and are counted: the estimate may pass the cap by
their cost. A request that failed is not counted (its cost is not known). Under ``pytest -n``
each worker process counts its own spending: the grid keeps a model's own cells on one worker,
and a worker whose cells use the model as their verifier counts apart.
"""

from __future__ import annotations

import math
import threading

from harness.models.api import Generation, SpendingCapReached


class SpendingCap:
    """The estimated cost of a backend's answers so far, against ``limit_usd`` (None: no cap).

    Raises:
        ValueError: a limit that is not a positive finite number, or a limit on a model with no
            known price (its cost could not be counted).
    """

    def __init__(self, model_name: str, limit_usd: float | None, priced: bool) -> None:
        if limit_usd is not None:
            if isinstance(limit_usd, bool) or not isinstance(limit_usd, (int, float)) or not (
                    math.isfinite(limit_usd) and limit_usd > 0):
                raise ValueError(f"{model_name}: max_cost_usd must be a positive number of US "
                                 f"dollars, got {limit_usd!r}")
            if not priced:
                raise ValueError(f"{model_name}: max_cost_usd needs the model's prices to count "
                                 "its cost, and none is known: give them as prices=")
        self.model_name, self.limit_usd = model_name, limit_usd
        self.spent_usd = 0.0
        self.unsent = 0
        self._lock = threading.Lock()

    def allows(self) -> bool:
        """Whether a request may be sent now; a refusal is counted in ``unsent``."""
        with self._lock:
            if self.limit_usd is None or self.spent_usd < self.limit_usd:
                return True
            self.unsent += 1
            return False

    def add(self, generation: Generation) -> None:
        """Count an answer's estimated cost."""
        cost = (generation.usage or {}).get("cost_usd")
        if isinstance(cost, (int, float)) and math.isfinite(cost) and cost > 0:
            with self._lock:
                self.spent_usd += cost

    def stop_error(self) -> SpendingCapReached | None:
        """The error to stop the model with, once the cap is reached; else None."""
        if self.limit_usd is None or self.spent_usd < self.limit_usd:
            return None
        unsent = f", {self.unsent} request(s) not sent" if self.unsent else ""
        return SpendingCapReached(
            f"{self.model_name}: its spending cap of ${self.limit_usd:,.2f} (max_cost_usd) was "
            f"reached: an estimated ${self.spent_usd:,.4f} spent by this process{unsent}; what "
            f"was answered is in the generation cache, so a run with a higher cap sends only "
            f"the rest")

    def check(self) -> None:
        """Raise :meth:`stop_error` once the cap is reached: nothing more is sent.

        Raises:
            SpendingCapReached: the cap is reached.
        """
        error = self.stop_error()
        if error is not None:
            raise error

    def refusal(self) -> Generation:
        """What a request not sent because of the cap gets (an error: never cached)."""
        return Generation(error=f"not sent: {self.model_name}'s spending cap of "
                                f"${self.limit_usd:,.2f} (max_cost_usd) was reached")


class Capped:
    """A backend with a :class:`SpendingCap` as ``cap`` says, as ``stopped``, that its cap
    kept a request unsent (raised once the call's answers are stored,
    :func:`harness.models.api.raise_if_stopped`, so that no cell is scored on a part of its
    items); a call whose last answer reached the cap ends as usual, and the next call raises
    before sending anything (:meth:`SpendingCap.check`)."""

    cap: SpendingCap

    @property
    def stopped(self) -> SpendingCapReached | None:
        return self.cap.stop_error() if self.cap.unsent else None
