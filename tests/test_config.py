"""Config loading, dotted overrides, type checks and helpful errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from radar.config import (
    RadarConfig,
    apply_overrides,
    build_config,
    build_section,
    load_config,
    save_config,
)
from radar.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert isinstance(config, RadarConfig)
    assert config.training.batch_size >= 1


def test_user_test_config_keeps_their_values():
    config = load_config(CONFIGS / "training_config_test.yaml")
    assert config.training.learning_rate == pytest.approx(2e-5)
    assert config.training.total_steps == 10000
    assert config.data.limit_files == 10
    assert config.model_section("logbert")[0]["hidden_size"] == 768
    assert config.output_dir == "checkpoints_test"


def test_overrides_are_type_checked_and_applied():
    config = load_config(None, ["training.batch_size=16", "output_dir=runs/first",
                                "training.learning_rate=3e-4", "data.strict=true",
                                "detectors=logbert,deeplog"])
    assert config.training.batch_size == 16
    assert config.output_dir == "runs/first"
    assert config.training.learning_rate == pytest.approx(3e-4)
    assert config.data.strict is True
    assert config.detectors == ["logbert", "deeplog"]


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'training.batchsize'; "
                                          r"did you mean 'training.batch_size'\?"):
        load_config(None, ["training.batchsize=8"])


def test_unknown_section_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'training'"):
        load_config(None, ["trainng.batch_size=8"])


def test_wrong_type_names_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"'training.batch_size' expects int, got 'big'"):
        load_config(None, ["training.batch_size=big"])
    with pytest.raises(ConfigError, match="'training.batch_size' expects int"):
        load_config(None, ["training.batch_size=true"])


def test_choice_keys_reject_other_values():
    with pytest.raises(ConfigError, match="must be one of auto, fp32, bf16, fp16"):
        load_config(None, ["training.precision=fp8"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expects section.key=value"):
        load_config(None, ["training.batch_size"])


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 2e-5\n")
    assert load_config(path).training.learning_rate == pytest.approx(2e-5)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listy)


def test_override_into_a_scalar_is_refused():
    with pytest.raises(ConfigError, match="'output_dir' is not a section"):
        apply_overrides({"output_dir": "x"}, ["output_dir.sub=1"])


def test_detector_section_validated_against_its_dataclass():
    @dataclass
    class TinyModel:
        hidden_size: int = 8
        dropout: float = 0.1

    assert build_section(TinyModel, {"hidden_size": 16}, "model").hidden_size == 16
    with pytest.raises(ConfigError, match="unknown config key 'model.hiden_size'; "
                                          "did you mean 'model.hidden_size'"):
        build_section(TinyModel, {"hiden_size": 16}, "model")


def test_saved_config_round_trips(tmp_path):
    config = load_config(CONFIGS / "training_config_test.yaml", ["training.batch_size=8"])
    path = save_config(config, tmp_path / "config.yaml")
    again = load_config(path)
    assert again == config
    assert yaml.safe_load(path.read_text())["training"]["batch_size"] == 8


def test_model_sections_per_detector():
    config = build_config({"detectors": ["logbert", "deeplog"],
                           "models": {"logbert": {"hidden_size": 64, "top_g": 3},
                                      "deeplog": {"hidden_size": 32}},
                           "model": {"top_g": 5}})
    # `model` is laid over the first detector's own section ...
    assert config.model_section("logbert") == ({"hidden_size": 64, "top_g": 5}, "model")
    # ... and never reaches the others.
    assert config.model_section("deeplog") == ({"hidden_size": 32}, "models.deeplog")
    assert config.model_section("tcn") == ({}, "models.tcn")
    with pytest.raises(ConfigError, match="models.tcn"):
        build_config({"models": {"tcn": 3}}).model_section("tcn")


def test_a_model_block_for_another_detector_says_where_it_belongs():
    from radar.plugins import make_detector

    config = build_config({"detectors": ["deeplog"], "model": {"hidden_size": 768,
                                                               "num_attention_heads": 12}})
    with pytest.raises(ConfigError, match="belongs to the first detector, deeplog here"):
        make_detector("deeplog", config)
