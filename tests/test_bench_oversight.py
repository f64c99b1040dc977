"""bench/oversight.py at its smallest size: CI does not run the benches, so this keeps the
50,000-pupil figures' code from rotting (the due list and the daily round are the real functions
on main, and the round really issues the review records that fall due)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def oversight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import oversight as module

    monkeypatch.setattr(module, "CACHE", tmp_path / "cache")  # not the shared cache in the temp folder
    yield module
    sys.modules.pop("bench.oversight", None)


def test_the_oversight_bench_times_the_real_due_list_and_round(oversight: Any) -> None:
    from sqlalchemy import select

    from bench.pipeline import make_inputs
    from senforms.archive import tables as t
    from senforms.archive.store import Archive
    from senforms.year.reviews import due_list

    result = oversight.measure(100, None, make_inputs(1), warm=0)
    # The due list is senforms due's: what due_list finds in the cached archive, as one list.
    archive = Archive(f"sqlite:///{oversight.CACHE / f'archive-100-{oversight.schema_head()}.sqlite'}")
    with archive.reading() as session:
        upcoming, overdue = due_list(session, oversight.TODAY)
        pupils = session.scalar(select(t.Pupil.id).order_by(t.Pupil.id.desc()).limit(1))
    archive.close()
    assert result["due"] == len(upcoming) + len(overdue) > 0
    assert pupils == 100
    assert result["rows"] == 100 and result["register_s"] > 0
    round_ = result["round"]
    assert round_["failed"] == []
    # Only the review records falling due on the round's day (earlier ones were marked issued),
    # and the week's digest.
    assert round_["counts"]["reviews_due"] >= 1
    assert round_["counts"]["weekly_digest"] == 1
    assert round_["issued"] == round_["counts"]["reviews_due"] + 1
    assert round_["seeded"] > round_["counts"]["reviews_due"]
    assert round_["map_s"] > 0 and round_["annual_each_s"] > 0
    assert round_["on_support"] >= 100
