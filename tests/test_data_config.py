"""The data section's range checks (radar.config.DataConfig)."""

from __future__ import annotations

import pytest

from radar.config import load_config
from radar.errors import ConfigError


@pytest.mark.parametrize("override,message", [
    ("data.max_seq_length=0", "data.max_seq_length must be a finite number >= 3, got 0"),
    ("data.max_seq_length=2", "data.max_seq_length must be a finite number >= 3, got 2"),
    ("data.limit_files=-1", "data.limit_files"),
    ("data.val_fraction=1", "data.val_fraction"),
    ("data.calibration_fraction=1.5", "data.calibration_fraction"),
])
def test_data_values_out_of_range_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_the_smallest_useful_sequence_length_is_accepted():
    assert load_config(None, ["data.max_seq_length=3"]).data.max_seq_length == 3
