import pytest

from stream.config import load_config, preset_names
from stream.errors import UserError


def test_presets_exist_and_load():
    assert {"default", "live-cpu", "gpu-1080p", "quality"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.device in ("auto", "cpu", "cuda")


def test_live_preset_is_asynchronous_and_waits_at_most_one_frame():
    config = load_config("live-cpu")
    assert config.inference.mode == "async"
    assert config.inference.max_wait_ms <= 1000 / 30
    assert config.model == "tcmonodepth"


def test_fcrn_is_the_default_of_quality_and_gpu_presets():
    assert load_config("quality").model == "fcrn"
    assert load_config("gpu-1080p").model == "fcrn"


def test_flags_override_config_keys():
    config = load_config("default", {"render.blur": 5, "refine.mode": "off", "model": None})
    assert config.render.blur == 5.0 and config.refine.mode == "off"
    assert config.model == "tcmonodepth"  # None means: flag not given


def test_unknown_key_is_refused_with_its_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("refine:\n  radiuss: 3\n")
    with pytest.raises(UserError, match=r"unknown config key 'refine.radiuss'"):
        load_config(str(path))


@pytest.mark.parametrize("yaml_text, key", [
    ("render:\n  blur: -3\n", "render.blur"),
    ("refine:\n  radius: 0\n", "refine.radius"),
    ("device: tpu\n", "device"),
    ("inference:\n  mode: maybe\n", "inference.mode"),
    ("render:\n  focus: near\n", "render.focus"),
    ("refine:\n  sigma_range: fast\n", "refine.sigma_range"),
    ("output:\n  side_by_side: 3\n", "output.side_by_side"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, yaml_text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        load_config(str(path))


def test_missing_config_file_and_unknown_preset():
    with pytest.raises(UserError, match="not found"):
        load_config("nowhere/config.yaml")
    with pytest.raises(UserError, match="unknown config preset"):
        load_config("turbo")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("refine: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(str(path))


def test_focus_value_and_point_parse():
    config = load_config(None, {"render.focus": "0.7", "render.focus_point": "12,34"})
    assert config.render.focus == pytest.approx(0.7)
    assert config.render.focus_point == (12, 34)
    with pytest.raises(UserError, match="focus_point"):
        load_config(None, {"render.focus_point": "x,y"})
