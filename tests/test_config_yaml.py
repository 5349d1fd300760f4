"""A config file as users write it: numbers the way YAML 1.2 (and every other tool) reads them, and every
mistake refused in one line that names the file, the line, the key and what is allowed."""
import re
from pathlib import Path

import pytest

from stream.config import PipelineConfig, load_config, preset_names
from stream.errors import UserError

README = Path(__file__).resolve().parents[1] / "README.md"


def _write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(path: Path, overrides: dict | None = None) -> str:
    with pytest.raises(UserError) as caught:
        load_config(str(path), overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("yaml_text, section, key, value", [
    ("refine:\n  sigma_range: 1e-2\n", "refine", "sigma_range", 0.01),  # PyYAML: the string '1e-2'
    ("refine:\n  sigma_range: 5E-2\n", "refine", "sigma_range", 0.05),
    ("refine:\n  sigma_spatial: 1.0e2\n", "refine", "sigma_spatial", 100.0),  # PyYAML: exponent needs a sign
    ("refine:\n  work_width: 0160\n", "refine", "work_width", 160),  # PyYAML: octal, 112
    ("inference:\n  max_batch: 0x4\n", "inference", "max_batch", 4),
    ("inference:\n  max_batch: 0o10\n", "inference", "max_batch", 8),  # YAML 1.2's octal
    ("render:\n  blur: 1_0\n", "render", "blur", 10.0),
    ("render:\n  blur: .5\n", "render", "blur", 0.5),
    ("render:\n  blur: '12'\n", "render", "blur", 12.0),  # a number in quotes, as templates write it
    ("inference:\n  max_batch: \"4\"\n", "inference", "max_batch", 4),
    ("render:\n  focus: .5\n", "render", "focus", 0.5),
])
def test_config_numbers_are_read_as_written(tmp_path, yaml_text, section, key, value):
    config = load_config(str(_write(tmp_path, yaml_text)))
    got = getattr(getattr(config, section), key)
    assert got == value and type(got) is type(value)


def test_config_base_60_is_not_a_number(tmp_path):
    # YAML 1.1 reads `blur: 1:30` as 90 (base 60): a run with nine times the blur asked for, unsaid
    message = _refused(_write(tmp_path, "render:\n  blur: 1:30\n"))
    assert "render.blur must be a number in [0, 256], got '1:30'" in message


@pytest.mark.parametrize("yaml_text, line, problem", [
    ("render:\n  focus: auto\n  blur: 12px\n", 3, "render.blur must be a number in [0, 256], got '12px'"),
    ("device: cpu\nrefine:\n  radius: 40\n", 3, "refine.radius must be in [1, 16], got 40"),
    ("device: CUDA\n", 1, "device must be one of auto, cpu, cuda, got 'CUDA'"),
    ("output:\n  preview: 'true'\n", 2, "output.preview must be true or false, got 'true'"),
    ("model_size: 518\n", 1, "model_size (--model-size) must be WIDTHxHEIGHT"),
    ("normalise:\n  high_percentile: 60\n  low_percentile: 60\n", 3, "normalise.low_percentile must be in [0, 50]"),
    ("render:\n  focus: 0.5\n  focus_point: 3,4\n", 3, "render.focus and render.focus_point both set the focus"),
])
def test_config_a_bad_value_names_the_file_and_its_line(tmp_path, yaml_text, line, problem):
    path = _write(tmp_path, yaml_text)
    message = _refused(path)
    assert message.startswith(f"config file {path}, line {line}: ")
    assert problem in message


def test_config_a_flag_s_bad_value_is_not_blamed_on_the_file(tmp_path):
    path = _write(tmp_path, "render:\n  blur: 12px\n")
    assert load_config(str(path), {"render.blur": 8.0}).render.blur == 8.0  # the flag replaces the bad value
    message = _refused(path, {"render.blur": 300.0})
    assert message == "--blur: render.blur must be in [0, 256], got 300.0"  # named as the user typed it


@pytest.mark.parametrize("word, value", [("on", "true"), ("yes", "true"), ("off", "false"), ("No", "false")])
def test_config_a_yaml_1_1_boolean_word_in_a_non_boolean_key_is_explained(tmp_path, word, value):
    message = _refused(_write(tmp_path, f"render:\n  focus: {word}\n"))
    assert f"render.focus must be a number in [0, 1], got {value.title()}" in message
    assert f"(YAML reads an unquoted {word} as {value})" in message
    assert load_config(str(_write(tmp_path, f"output:\n  side_by_side: {word}\n"))).output.side_by_side is (
        value == "true")  # in a boolean key the word means what it says


@pytest.mark.parametrize("yaml_text, expected", [
    ("blur: 8\n", "unknown config key 'blur' in {path}, line 1 (did you mean 'render.blur'?)"),
    ("render:\n  focus: auto\n  blurr: 8\n", "unknown config key 'render.blurr' in {path}, line 3 "
                                            "(did you mean 'render.blur'?)"),
    ("refine.radius: 4\n", "unknown config key 'refine.radius' in {path}, line 1 (sections nest in YAML: "
                           "write 'refine:' and under it '  radius: ...')"),
    ("refine:\n  focus: 0.5\n", "unknown config key 'refine.focus' in {path}, line 2 "
                                "(did you mean 'render.focus'?)"),
    ("threads: 1\n", "unknown config key 'threads' in {path}, line 1 (did you mean 'inference.threads' or "
                     "'refine.threads' or 'render.threads'?)"),
    ("colour: red\n", "unknown config key 'colour' in {path}, line 1 (known keys here: deinterlace, device, "
                      "inference, model, model_input, model_output, model_size, normalise, output, queues, refine, "
                      "render)"),
])
def test_config_an_unknown_key_says_its_line_and_what_was_meant(tmp_path, yaml_text, expected):
    path = _write(tmp_path, yaml_text)
    assert _refused(path) == expected.format(path=path)


@pytest.mark.parametrize("yaml_text, problem", [
    ("render:\n  blur: !!float abc\n", "'abc' is not a valid !!float at line 2, column 9"),
    ("render:\n  blur: !!int 12px\n", "'12px' is not a valid !!int at line 2, column 9"),
    ("model: !!timestamp tomorrow\n", "'tomorrow' is not a valid !!timestamp at line 1, column 8"),
    ("render:\n  blur: !!bool maybe\n", "'maybe' is not a valid !!bool at line 2, column 9"),
    ("render:\n  blur: !!set [1]\n", "expected a mapping node, but found sequence at line 2, column 9"),
    ("render:\n  blur: !!bool [1]\n", "expected a scalar node, but found sequence at line 2, column 9"),
])
def test_config_an_explicit_tag_on_a_bad_value_is_one_line_not_a_traceback(tmp_path, yaml_text, problem):
    path = _write(tmp_path, yaml_text)
    assert _refused(path) == f"config file {path} is not valid YAML: {problem}"


def test_config_model_size_as_a_yaml_pair(tmp_path):
    assert load_config(str(_write(tmp_path, "model_size: [518, 392]\n"))).model_size == "518x392"
    assert "got [518, 392, 3]" in _refused(_write(tmp_path, "model_size: [518, 392, 3]\n"))


def test_config_windows_line_endings_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "notepad.yaml"
    path.write_bytes("\ufeffrender:\r\n  blur: 8\r\nrefine:\r\n  radius: 40\r\n".encode())
    assert _refused(path).startswith(f"config file {path}, line 4: refine.radius")


def _readme_presets() -> dict[str, list[str]]:
    text = README.read_text()
    table = text[text.index("| preset | for |"):]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")][:len(preset_names())]
    return {cells[0].strip("` "): [cell.strip() for cell in cells[1:]]
            for cells in (row.strip("|").split("|") for row in rows)}


def test_config_every_preset_matches_the_readme_s_table():
    table = _readme_presets()
    assert set(table) == set(preset_names())
    for name, (_, model, depth, refinement) in table.items():
        config = load_config(name)
        assert config.model == model, name
        if depth.startswith("async"):
            assert config.inference.mode == "async", name
        else:
            batches = re.fullmatch(r"sync, batches of (\d+)", depth)
            assert batches and config.inference.mode == "sync", name
            assert config.inference.max_batch == int(batches.group(1)), name
        width = re.match(r"live mode at (\d+) px", refinement)
        assert width and config.refine.mode == "live" and config.refine.work_width == int(width.group(1)), name
        assert ("CUDA" in refinement) == (config.device == "cuda"), name
        assert ("person mask" in refinement) == (config.refine.person_mask != "off"), name


def test_config_the_readme_s_full_example_is_the_defaults(tmp_path):
    text = README.read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert load_config(str(_write(tmp_path, block))) == PipelineConfig().validate()


@pytest.mark.parametrize("yaml_text, hint", [
    ("[render]\nblur = 3\n", "this reads as INI or TOML; a config is YAML"),
    ("# mine\n[render]\nblur: 3\n", "this reads as INI or TOML"),
    ("render:\n  blur: 3\n   focus: auto\n", "is a key indented unlike the others of its section?"),
    ("render:\n  blur: 3\n focus: auto\n", "is a key indented unlike the others of its section?"),
])
def test_config_a_file_that_does_not_parse_is_told_why_in_a_user_s_words(tmp_path, yaml_text, hint):
    """PyYAML's `expected '<document start>', but found '<scalar>'` did not say the file was INI, nor
    `expected <block end>, but found '<block mapping start>'` that a key was one space off."""
    message = _refused(_write(tmp_path, yaml_text))
    assert message.startswith(f"config file {tmp_path / 'mine.yaml'} is not valid YAML: ") and hint in message
