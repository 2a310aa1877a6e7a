"""The scheduler process's garbage-collector settings."""

from __future__ import annotations

import gc
import logging

import pytest

from mesos_gpu import gcpolicy


@pytest.fixture
def restored_gc():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.parametrize(
    ("text", "expected"), [("50000,20,10", (50000, 20, 10)), (" 700, 10 ,10 ", (700, 10, 10))]
)
def test_parse_thresholds(text, expected):
    assert gcpolicy.parse_thresholds(text) == expected


@pytest.mark.parametrize("text", ["", "1,2", "1,2,3,4", "a,b,c", "-1,2,3", "1.5,2,3"])
def test_parse_thresholds_rejects_what_is_not_three_counts(text):
    with pytest.raises(ValueError, match="MESOS_GPU_GC_THRESHOLDS must be three non-negative integers"):
        gcpolicy.parse_thresholds(text)


def test_configure_applies_the_service_thresholds_and_freezes_what_is_loaded(restored_gc):
    assert gcpolicy.configure({}) == gcpolicy.SERVICE_THRESHOLDS
    assert gc.get_threshold() == gcpolicy.SERVICE_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_configure_reads_the_environment_and_survives_a_bad_value(restored_gc, caplog):
    assert gcpolicy.configure({"MESOS_GPU_GC_THRESHOLDS": "700,10,10"}, freeze=False) == (700, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    with caplog.at_level(logging.WARNING, logger="mesos_gpu.gcpolicy"):
        applied = gcpolicy.configure({"MESOS_GPU_GC_THRESHOLDS": "lots"}, freeze=False)
    assert applied == gcpolicy.SERVICE_THRESHOLDS
    assert "MESOS_GPU_GC_THRESHOLDS must be three" in caplog.text
