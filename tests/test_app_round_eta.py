"""A running round's ETA: extrapolated from the current attempt only, so that a round resumed
after the service was stopped for hours does not report those hours as its pace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import Round, RoundStatus, utcnow
from app.services.rounds import eta_seconds


def running_round(progress: float, **fields: object) -> Round:
    return Round(status=RoundStatus.RUNNING, progress=progress, **fields)


def test_a_first_attempt_extrapolates_from_the_start() -> None:
    now = utcnow()
    round_ = running_round(0.25, started_at=now - timedelta(seconds=100))
    assert eta_seconds(round_) == pytest.approx(300.0, rel=0.02)


def test_a_resumed_round_counts_only_the_current_attempt() -> None:
    """Started 10 hours ago, stopped at 40 %, resumed 60 s ago and now at 50 %: 10 % a
    minute, so five minutes are left (not the 10 hours a whole-life pace would say)."""
    now = utcnow()
    round_ = running_round(
        0.5,
        started_at=now - timedelta(hours=10),
        attempt_started_at=now - timedelta(seconds=60),
        attempt_progress=0.4,
    )
    assert eta_seconds(round_) == pytest.approx(300.0, rel=0.02)


def test_no_eta_until_the_attempt_has_made_progress() -> None:
    now = utcnow()
    resumed = running_round(
        0.41, started_at=now - timedelta(hours=1), attempt_started_at=now, attempt_progress=0.4
    )
    assert eta_seconds(resumed) is None
    behind = running_round(  # a crash lost work since the last snapshot: progress went back
        0.3, started_at=now - timedelta(hours=1), attempt_started_at=now, attempt_progress=0.4
    )
    assert eta_seconds(behind) is None
    assert eta_seconds(running_round(0.01, started_at=now)) is None


@pytest.mark.parametrize("status", [RoundStatus.QUEUED, RoundStatus.SUCCEEDED])
def test_no_eta_for_a_round_not_running(status: RoundStatus) -> None:
    round_ = Round(status=status, progress=0.5, started_at=utcnow() - timedelta(seconds=10))
    assert eta_seconds(round_) is None
