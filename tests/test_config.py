import re
from pathlib import Path

import pytest

from stream.config import CONFIG_DIR, load_config, preset_names
from stream.errors import UserError


def test_presets_exist_and_load():
    assert {"default", "live-cpu", "gpu-1080p", "quality"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.device in ("auto", "cpu", "cuda")


def test_an_installed_copy_finds_the_presets_and_the_cuda_sources(tmp_path):
    # `pip install .` or a wheel, not only an editable checkout: the presets and kernels/*.cu must travel
    # with the code (once, they did not, and every camera run, which takes the live-cpu preset, failed).
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a clean copy: setuptools would reuse a checkout's stale build/ folder
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    for name in ("stream", "kernels", "models", "configs"):
        shutil.copytree(repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              str(source)], capture_output=True, text=True, timeout=600)
    no_index = "Could not find a version that satisfies the requirement setuptools"
    if install.returncode != 0 and no_index in install.stderr:
        pytest.skip("no package index for the build's setuptools: " + install.stderr.strip().splitlines()[-1])
    assert install.returncode == 0, install.stderr
    check = ("from stream.config import preset_names; from kernels.cuda_module import read_source; "
             "import stream; print(stream.__file__); print(' '.join(preset_names())); "
             "read_source('joint_bilateral.cu')")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={"PATH": "", "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stderr
    where, names = result.stdout.splitlines()
    assert Path(where).is_relative_to(target)  # the installed copy, not the checkout
    assert set(names.split()) == set(preset_names())


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
    ("render:\n  blur: .nan\n", "render.blur"),
    ("render:\n  focus: .nan\n", "render.focus"),
    ("normalise:\n  smoothing: .nan\n", "normalise.smoothing"),
    ("refine:\n  radius: 4.5\n", "refine.radius"),
    ("refine:\n  work_width: 100.5\n", "refine.work_width"),
    ("refine:\n  live_radius: 17\n", "refine.live_radius"),
    ("refine:\n  live_sigma_spatial: 0\n", "refine.live_sigma_spatial"),
    ("output:\n  save_depth: 5\n", "output.save_depth"),
    ("output:\n  save_depth: true\n", "output.save_depth"),
    ("output:\n  save_depth: ''\n", "output.save_depth"),
    ("output:\n  progress: 'yes'\n", "output.progress"),
    ("output:\n  preview: 1\n", "output.preview"),
    ("inference:\n  tensorrt: 1\n", "inference.tensorrt"),
    ("render:\n  focus_point: [1.5, 2]\n", "render.focus_point"),
    ("render:\n  focus_point: [true, 2]\n", "render.focus_point"),
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


def test_a_preset_name_means_the_preset_whatever_the_working_folder_holds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_text("some notes\n")  # a file of the preset's name: ./default reads it
    (tmp_path / "quality").mkdir()
    assert load_config("default") == load_config(str(CONFIG_DIR / "default.yaml"))
    assert load_config("quality").model == "fcrn"
    with pytest.raises(UserError, match="must be a mapping"):
        load_config("./default")


def test_a_missing_file_named_with_a_folder_is_not_found_whatever_its_extension():
    with pytest.raises(UserError, match="config file ./missing.conf not found"):
        load_config("./missing.conf")


def test_refine_mode_off_unquoted_is_off(tmp_path):
    path = tmp_path / "off.yaml"
    path.write_text("refine:\n  mode: off\n")  # YAML 1.1 reads it as false
    assert load_config(str(path)).refine.mode == "off"
    path.write_text("refine:\n  mode: on\n")
    with pytest.raises(UserError, match="refine.mode must be one of full, live, off, got True"):
        load_config(str(path))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("refine: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(str(path))


def test_focus_value_and_point_parse():
    assert load_config(None, {"render.focus": "0.7"}).render.focus == pytest.approx(0.7)
    assert load_config(None, {"render.focus_point": "12,34"}).render.focus_point == (12, 34)
    with pytest.raises(UserError, match="focus_point"):
        load_config(None, {"render.focus_point": "x,y"})


def test_a_focus_flag_replaces_the_file_s_way_of_focusing(tmp_path):
    """A file's focus_point won over --focus (and --focus auto): the flag was dropped without a word. Flags
    override the file, whichever key it used; a file that sets both is refused, as the two flags are."""
    point = tmp_path / "point.yaml"
    point.write_text('render:\n  focus_point: "5,5"\n')
    for flag in (0.95, "auto"):
        render = load_config(str(point), {"render.focus": flag}).render
        assert render.focus_point is None and render.focus == flag
    value = tmp_path / "value.yaml"
    value.write_text("render:\n  focus: 0.3\n")
    render = load_config(str(value), {"render.focus_point": "7,8"}).render
    assert render.focus_point == (7, 8) and render.focus == "auto"
    both = tmp_path / "both.yaml"
    both.write_text('render:\n  focus: 0.3\n  focus_point: "5,5"\n')
    with pytest.raises(UserError, match="render.focus and render.focus_point both set the focus"):
        load_config(str(both))
    assert load_config(str(both), {"render.focus": 0.5}).render.focus_point is None  # the flag settles it


# --- the audit: every bad value is one UserError naming the key, found at load time ---------------

import dataclasses  # noqa: E402
import os  # noqa: E402
from typing import get_type_hints  # noqa: E402

from stream.config import PipelineConfig  # noqa: E402


def _keys_of_type(kind: type) -> list[str]:
    keys = []
    for section in dataclasses.fields(PipelineConfig):
        if not dataclasses.is_dataclass(section.default_factory):  # type: ignore[arg-type]
            continue
        hints = get_type_hints(section.default_factory)
        keys += [f"{section.name}.{name}" for name, hint in hints.items() if hint is kind]
    return keys


def _refused(overrides: dict, key: str) -> str:
    with pytest.raises(UserError, match=key.replace(".", r"\.")) as caught:
        load_config(None, overrides)
    return str(caught.value)


@pytest.mark.parametrize("key", _keys_of_type(float))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_for_every_float_key(key, value):
    assert "finite" in _refused({key: value}, key)  # NaN fails no comparison: a range check alone lets it in


@pytest.mark.parametrize("key", _keys_of_type(int))
def test_fractional_and_boolean_values_are_refused_for_every_integer_key(key):
    section, name = key.split(".")
    inside_range = getattr(getattr(PipelineConfig(), section), name) + 0.5  # e.g. 4.5: truncated to 4 before
    assert "whole number" in _refused({key: inside_range}, key)
    _refused({key: float("nan")}, key)
    _refused({key: True}, key)


def test_integral_floats_are_taken_as_integers():
    config = load_config(None, {"refine.radius": 4.0, "queues.size": 2.0})
    assert config.refine.radius == 4 and isinstance(config.refine.radius, int)
    assert config.queues.size == 2 and isinstance(config.queues.size, int)


@pytest.mark.parametrize("focus", ["nan", "inf", float("nan"), True])
def test_focus_refuses_non_finite_and_booleans(focus):
    _refused({"render.focus": focus}, "render.focus")


def test_save_depth_and_focus_point_accept_good_values():
    config = load_config(None, {"output.save_depth": "d.mp4", "render.focus_point": (3.0, 4)})
    assert config.output.save_depth == "d.mp4" and config.render.focus_point == (3, 4)


def test_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("render:\n  focus: auto # für\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8.*save it as UTF-8"):
        load_config(str(path))


def test_config_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "somedir.yaml"
    folder.mkdir()
    with pytest.raises(UserError, match="is a folder"):
        load_config(str(folder))


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() == 0, reason="root reads any file")
def test_unreadable_config_file(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("device: cpu\n")
    path.chmod(0)
    with pytest.raises(UserError, match="cannot read config file.*permission"):
        load_config(str(path))


def test_unreadable_config_file_as_any_user(tmp_path, monkeypatch):
    """The same refusal where the tests run as root (who reads any file): the read itself is denied."""
    path = tmp_path / "secret.yaml"
    path.write_text("device: cpu\n")
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "secret.yaml":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UserError, match=r"cannot read config file .*secret\.yaml: permission denied; check its "
                                        r"permissions$"):
        load_config(str(path))


def test_oversized_config_file_is_not_read_whole(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (2 << 20))
    with pytest.raises(UserError, match="small YAML file"):
        load_config(str(path))


def test_empty_config_name_is_refused():
    with pytest.raises(UserError, match="config name is empty"):
        load_config("")


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text("refine:\n\tradius: 4\n")
    with pytest.raises(UserError, match=r"line 2, column 1.*spaces, not tabs") as caught:
        load_config(str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("yaml_text, key, lines", [
    ("refine:\n  radius: 4\n  sigma_range: 0.1\n  radius: 8\n", "refine.radius", "lines 2 and 4"),  # by its path
    ("device: cpu\ndevice: cuda\n", "device", "lines 1 and 2"),
])
def test_duplicate_keys_are_refused_naming_key_and_lines(tmp_path, yaml_text, key, lines):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml_text)
    with pytest.raises(UserError, match=rf"key '{re.escape(key)}' twice \({lines}\)"):
        load_config(str(path))


def test_yaml_merge_keys_and_comment_only_files_still_load(tmp_path):
    merged = tmp_path / "merged.yaml"
    merged.write_text("refine: &r\n  radius: 4\nrender:\n  blur: 3\n")
    assert load_config(str(merged)).refine.radius == 4
    anchors = tmp_path / "anchors.yaml"  # `<<` then an explicit key overriding it is not a duplicate
    anchors.write_text("refine:\n  <<: {radius: 4, sigma_range: 0.1}\n  radius: 6\n")
    assert load_config(str(anchors)).refine.radius == 6
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set yet\n")
    assert load_config(str(empty)).refine.radius == PipelineConfig().refine.radius
    section = tmp_path / "section.yaml"  # a section whose keys are all commented out keeps its defaults
    section.write_text("render:\n  blur: 3\nrefine:\n  # radius: 4\n")
    config = load_config(str(section))
    assert config.render.blur == 3 and config.refine == PipelineConfig().refine


def test_top_level_scalar_is_refused(tmp_path):
    path = tmp_path / "zero.yaml"
    path.write_text("0\n")  # was taken as "no settings" because 0 is falsy
    with pytest.raises(UserError, match="must be a mapping"):
        load_config(str(path))


def test_a_live_mode_file_that_sets_the_exact_filter_s_window_is_told_which_keys_live_mode_reads(tmp_path):
    notes: list[str] = []
    old_style = tmp_path / "old.yaml"
    old_style.write_text("refine:\n  mode: live\n  radius: 6\n")
    config = load_config(str(old_style), notify=notes.append)
    assert config.refine.radius == 6 and config.refine.live_radius == 4  # kept, for --refine full
    [note] = notes
    assert "refine.radius" in note and "refine.live_radius (4)" in note and str(old_style) in note
    both = tmp_path / "both.yaml"
    both.write_text("refine:\n  mode: live\n  radius: 6\n  live_radius: 3\n")
    full = tmp_path / "full.yaml"
    full.write_text("refine:\n  mode: full\n  radius: 6\n")
    for quiet in (str(both), str(full), *preset_names()):
        load_config(quiet, notify=notes.append)
    assert len(notes) == 1
    load_config(str(full), {"refine.mode": "live"}, notify=notes.append)  # live from the command line
    assert len(notes) == 2


def test_a_config_nested_thousands_of_levels_deep_is_one_line(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("refine: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(UserError, match="nested too deeply"):
        load_config(str(deep))


def test_a_config_file_s_paths_are_read_from_its_own_folder(tmp_path, monkeypatch):
    """`model: ../models/mine.onnx` in a config was looked up from wherever the command ran ("model file
    ../models/mine.onnx not found"), so moving the file and its model together broke it."""
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    config = folder / "mine.yaml"
    config.write_text("model: ../models/mine.onnx\noutput:\n  save_depth: depth/out.mp4\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_config(str(config))
    assert Path(loaded.model) == folder / ".." / "models" / "mine.onnx"
    assert Path(loaded.output.save_depth) == folder / "depth" / "out.mp4"
    absolute = tmp_path / "elsewhere.onnx"
    config.write_text(f"model: {absolute}\n")
    assert load_config(str(config)).model == str(absolute)
    config.write_text("output:\n  save_depth: depths/\n")  # a folder stays a folder
    assert load_config(str(config)).output.save_depth == str(folder / "depths") + os.sep
    config.write_text("model: fcrn\n")  # a registry name stays a name
    assert load_config(str(config)).model == "fcrn"
    flags = load_config(str(config), {"model": "flag.onnx", "output.save_depth": "d.mp4"})
    assert flags.model == "flag.onnx" and flags.output.save_depth == "d.mp4"  # flags: the working folder


def test_a_preset_named_as_a_file_that_is_not_there_says_how_to_name_the_preset(tmp_path, monkeypatch):
    """`--config live-cpu.yaml` (as the file is called in configs/) from another folder: 'not found' alone."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="config file live-cpu.yaml not found; for the preset, write --config "
                                        "live-cpu"):
        load_config("live-cpu.yaml")
    (tmp_path / "live-cpu.yaml").write_text("render:\n  blur: 3\n")  # a file of that name is the file
    assert load_config("live-cpu.yaml").render.blur == 3


@pytest.mark.parametrize("name, meant", [("defualt", "default"), ("live_cpu", "live-cpu"), ("LIVE-CPU", "live-cpu"),
                                         ("quality2", "quality")])
def test_a_misspelt_preset_gets_the_one_it_most_likely_meant(name, meant):
    with pytest.raises(UserError, match=rf"unknown config preset '{name}' \(did you mean {meant}\?\)"):
        load_config(name)


@pytest.mark.parametrize("yaml_text, meant", [("device: gpu\n", "cuda"), ("refine:\n  mode: ful\n", "full"),
                                              ("model_output: meters\n", "metres")])
def test_a_misspelt_choice_in_a_file_gets_the_one_it_most_likely_meant(tmp_path, yaml_text, meant):
    """`device: gpu` is spelt most like `cpu`: the suggestion is what the user wants, not what is nearest."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(UserError, match=rf"line \d+: .* \(did you mean {meant}\?\)$"):
        load_config(str(path))


@pytest.mark.parametrize("key, value, flag", [("render.blur", -3.0, "--blur"), ("render.focus", "near", "--focus"),
                                              ("inference.max_batch", 0, "--max-batch"),
                                              ("render.focus_point", "-1,5", "--focus-point"),
                                              ("render.highlight_boost", 100.0, "--highlight-boost")])
def test_a_bad_value_from_a_flag_is_named_by_the_flag_as_typed(tmp_path, key, value, flag):
    """`--blur -3` was answered with `render.blur must be ...`: a key the user never typed."""
    with pytest.raises(UserError, match=rf"^{flag}: {re.escape(key)} must be"):
        load_config(None, {key: value})
    path = tmp_path / "c.yaml"  # over a file too: the flag's value is the one read, so the flag is named
    path.write_text("render:\n  blur: 4\n")
    with pytest.raises(UserError, match=rf"^{flag}: {re.escape(key)} must be"):
        load_config(str(path), {key: value})


def test_the_default_preset_is_what_a_run_without_config_gets():
    """The help's 'N in the default preset' is read from the built-in defaults: they must be the preset's."""
    from stream.config import PipelineConfig

    assert load_config("default") == load_config(None) == PipelineConfig().validate()
