"""Tests of fittingroom.index.settings (errors and their messages)."""

from __future__ import annotations

from fittingroom.index import IndexMismatchError, IndexNotFoundError, IndexSettings
from fittingroom.index.settings import mismatch_error


def test_mismatch_error_names_both_encoders_and_the_rebuild_command():
    err = mismatch_error(
        stored=("offline", 2056), requested=("clip", 512), where="the index X", index_dir="/d"
    )
    assert isinstance(err, IndexMismatchError)
    assert isinstance(err, IndexNotFoundError) and isinstance(err, ValueError)
    text = str(err)
    assert "'offline' (dim 2056)" in text and "'clip' (dim 512)" in text
    assert "`fittingroom ingest FEED --encoder clip --index-dir /d`" in text


def test_tuning_defaults():
    s = IndexSettings()
    assert s.lists_per_sqrt_n == 4.0 and s.min_points_per_list == 39 and s.plateau_tolerance == 0.005
