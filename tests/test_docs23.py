"""The manual's most fragile claims, kept true: every option and config key README.md and docs/*.md name exists
(and each `key: value` they show is read, or refused where a page shows it as a mistake), the command-line mistakes
docs/errors.md quotes are answered as it says, the bench JSON's `machine` and `versions` are the fields a report
has, the output types and codecs listed are those accepted, and the synthetic input's defaults are its own.
(Links and headings: test_docs20.py; the README's command-line summary: test_readme.py.)"""
import argparse
import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.config import PipelineConfig, load_config
from stream.errors import UserError
from test_readme import _commands, _options

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Named in the manual but not depthcam's own: docker's option (benchmark.md), the misspelling and the other name
# (--preset: --config) errors.md answers
NOT_DEPTHCAM_S = {"--cpus", "--blurr", "--preset"}


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def _section(text: str, heading: str) -> str:
    """The text under a `## heading` up to the next heading of any level."""
    start = text.index(heading + "\n") + len(heading)
    following = re.search(r"^#{1,6} ", text[start:], flags=re.M)
    return text[start:start + following.start()] if following else text[start:]


def _all_options() -> set[str]:
    options = {"--debug", "--version", "--help", "-h"}
    for parser in _commands().values():
        options |= _options(parser)
    return options


def _named_options(text: str) -> set[str]:
    """`--name` and `--[no-]name` as written anywhere in a page, code blocks included (both spellings of the latter)."""
    named = set()
    for negatable, name in re.findall(r"(?<![\w-])--(\[no-\])?([a-z][a-z0-9-]*)", text):
        named.add(f"--{name}")
        if negatable:
            named.add(f"--no-{name}")
    return named


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.name)
def test_every_option_the_manual_names_is_one_depthcam_takes(path):
    assert _named_options(path.read_text()) - NOT_DEPTHCAM_S - _all_options() == set()


def test_the_options_left_out_of_the_check_are_still_named_and_still_not_depthcam_s():
    """The exceptions above must not hide a real option (or outlive the sentence that needed them)."""
    named = set().union(*(_named_options(path.read_text()) for path in PAGES))
    assert NOT_DEPTHCAM_S <= named and not NOT_DEPTHCAM_S & _all_options()


def _schema_keys() -> set[str]:
    config = PipelineConfig()
    keys = set()
    for field in dataclasses.fields(config):
        keys.add(field.name)
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            keys |= {f"{field.name}.{inner.name}" for inner in dataclasses.fields(value)}
    return keys


SECTIONS = {key for key in _schema_keys() if dataclasses.is_dataclass(getattr(PipelineConfig(), key, None))}


@pytest.mark.parametrize("path", PAGES, ids=lambda path: path.name)
def test_every_config_key_the_manual_names_is_a_key_of_the_schema(path):
    """`render.exact_far`, `normalise.pixel_smoothing`, ...: a renamed key leaves no page pointing at nothing."""
    dotted = set(re.findall(r"`([a-z_]+\.[a-z_0-9]+)", path.read_text()))
    named = {key for key in dotted if key.split(".")[0] in SECTIONS}
    assert named - _schema_keys() == set()


def _shown_settings() -> list[tuple[str, str, str]]:
    """Each `key: value` or `section.key: value` a page shows in backticks, with the page's name."""
    found = []
    for path in PAGES:
        for key, value in re.findall(r"`([a-z_]+(?:\.[a-z_]+)?): ([^`\n]+)`", path.read_text()):
            if key.split(".")[0] in _schema_keys():
                found.append((path.name, key, value))
    return found


def _as_yaml(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    return f"{section}:\n  {name}: {value}\n" if section else f"{key}: {value}\n"


SHOWN_AS_MISTAKES = _section(_page("configuration.md"), "## Mistakes in a config file")


@pytest.mark.parametrize("page, key, value", _shown_settings(), ids=lambda item: str(item))
def test_each_setting_the_manual_shows_is_read_and_each_mistake_it_shows_is_refused(tmp_path, page, key, value):
    """`deinterlace: off`, `inference.tensorrt: true`, `output.preview: true` are read as written; the mistakes
    configuration.md shows (`refine.radius: 4` written flat, `device: gpu`) are refused as it says."""
    path = tmp_path / "shown.yaml"
    if page == "configuration.md" and f"`{key}: {value}`" in SHOWN_AS_MISTAKES:
        path.write_text(f"{key}: {value}\n")  # as shown: `refine.radius: 4` is the mistake of writing it flat
        with pytest.raises(UserError):
            load_config(str(path))
    else:
        path.write_text(_as_yaml(key, value))
        load_config(str(path))


def test_the_settings_check_finds_the_manual_s_examples():
    keys = {key for _, key, _ in _shown_settings()}
    assert {"deinterlace", "model_output", "output.preview", "refine.radius", "device"} <= keys


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return str(path)


def _error_line(capsys, argv: list[str]) -> str:
    """depthcam's one line for a mistake found before anything loads (argparse's exit, or main's status 2)."""
    from stream import cli

    try:
        code = cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


MISTAKES = _section(_page("errors.md"), "## Mistakes on the command line")


def test_the_misspellings_errors_md_quotes_are_answered_with_what_it_says(capsys, photo):
    """errors.md: "`--blurr`: `--blur`; `--device gpu`: `cuda`; `--config live_cpu`: `live-cpu`"."""
    pairs = re.findall(r"`(--[a-z-]+(?: [a-z_-]+)?)`: `([^`]+)`", MISTAKES)
    assert len(pairs) >= 3, MISTAKES
    for given, meant in pairs:
        words = given.split()
        argv = ["run", photo, "-o", "null", *words, *(["3"] if len(words) == 1 else [])]
        line = _error_line(capsys, argv)
        assert f"did you mean {meant}?" in line, (given, line)


def test_the_bad_flag_value_errors_md_quotes_is_the_line_depthcam_prints(capsys, photo):
    """errors.md: "A bad value given by a flag names the flag: `--blur: render.blur must be in [0, 256], got -3.0`"."""
    flag, message, value = re.search(r"`(--[a-z-]+): ([a-z_.]+ must be [^`]*?, got (-?[\d.]+))`", MISTAKES).groups()
    line = _error_line(capsys, ["run", photo, "-o", "null", flag, value])
    assert line.strip() == f"depthcam: error: {flag}: {message}"


def _braced(block: str, name: str) -> set[str]:
    """The field names inside `name: {...}` of the JSON outline."""
    inner = re.search(rf"\b{name}: \{{([^}}]*)\}}", block).group(1)
    return {word.strip() for word in inner.split(",")}


def test_the_json_outline_names_the_machine_and_versions_fields_a_report_has():
    """benchmark.md's schema block left out `machine.cuda` (added with the CUDA versions in the machine line)."""
    from stream.bench import machine_info, versions

    text = _page("benchmark.md")
    block = text[text.index("## The JSON"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    assert _braced(block, "machine") == set(machine_info())
    assert _braced(block, "versions") == set(versions())


def _suffixes(text: str) -> set[str]:
    return set(re.findall(r"\.[a-z0-9]+", text))


def test_the_output_types_listed_are_those_depthcam_writes():
    from stream.images import ANIMATION_ONLY, IMAGE_SUFFIXES
    from stream.video_writer import video_suffixes

    outputs = _section(_page("inputs-and-outputs.md"), "## Outputs")
    videos = re.search(r"Video files: `([^`]+)`", outputs).group(1)
    images = re.search(r"Image files: `([^`]+)`, and `([^`]+)`", outputs)
    assert _suffixes(videos) == set(video_suffixes())
    assert _suffixes(images.group(1)) == IMAGE_SUFFIXES and _suffixes(images.group(2)) == ANIMATION_ONLY
    codecs_page = _section(_page("video-files.md"), "## Codecs: `--codec`")
    assert _suffixes(re.search(r"Video outputs are `([^`]+)`", codecs_page).group(1)) == set(video_suffixes())
    photos = re.search(r"by its extension: `([^`]+)`", _page("photos.md")).group(1)
    assert _suffixes(photos) == IMAGE_SUFFIXES


def test_the_codecs_listed_are_the_choices_of_codec():
    """video-files.md's table and the README's list name every `--codec` choice, and no other."""
    run = _commands()["run"]
    choices = set(next(action for action in run._actions if "--codec" in action.option_strings).choices)
    table = _section(_page("video-files.md"), "## Codecs: `--codec`")
    assert set(re.findall(r"^\| `([a-z0-9]+)`", table, flags=re.M)) == choices
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"`--codec` chooses the video codec \(([^)]*)\)", readme).group(1)
    assert set(re.findall(r"`([a-z0-9]+)`", listed)) == choices


def test_the_synthetic_input_s_defaults_are_those_the_page_gives():
    """inputs-and-outputs.md: `synthetic:portrait[?size=640x480&fps=30&frames=300&realtime=0&seed=0]` (the defaults)."""
    from stream.sources import open_source

    given = re.search(r"`synthetic:portrait\[\?([^\]]+)\]` \(the defaults\)", _page("inputs-and-outputs.md")).group(1)
    defaults = dict(item.split("=") for item in given.split("&"))
    source = open_source("synthetic:portrait")
    try:
        width, height = (int(side) for side in defaults["size"].split("x"))
        assert (source.width, source.height) == (width, height)
        assert source.fps == float(defaults["fps"]) and source.frame_count == int(defaults["frames"])
        assert source.live == bool(int(defaults["realtime"])) and source.scene.scene.seed == int(defaults["seed"])
    finally:
        source.close()


def test_the_parser_check_reads_subcommands():
    """`--fp16` is `models convert`'s: the options gathered include a subcommand's own."""
    assert "--fp16" in _all_options() and isinstance(_commands()["models"], argparse.ArgumentParser)


REPO_FOLDERS = ("stream", "kernels", "models", "bench", "configs", "docs", "tests")


def test_every_file_of_this_repository_the_manual_names_exists():
    """`stream/tracking.py`, `bench/refine_modes.py`, `bash bench/gpu_check.sh`, `kernels/*.cu`, ...: a file moved or
    renamed leaves no page sending the reader to it."""
    folders = "|".join(REPO_FOLDERS)
    missing = []
    for path in PAGES:
        for name in set(re.findall(rf"(?<![\w./-])((?:{folders})/[\w./*-]*\w)", path.read_text())):
            if not any(ROOT.glob(name)):
                missing.append(f"{path.name}: {name}")
    assert missing == []


def _table_keys(text: str) -> set[str]:
    """The keys of a `| key | what it does |` table, as the characters (or Esc) a window is given."""
    table = text[text.index("| key | what it does |"):]
    keys = set()
    for row in table.splitlines()[2:]:
        if not row.startswith("|"):
            break
        first = row.split("|")[1]
        keys |= set(re.findall(r"`(.)`", first)) | ({"Esc"} if "Esc" in first else set())
    return keys


@pytest.mark.parametrize("path", [ROOT / "README.md", ROOT / "docs" / "live.md"], ids=lambda path: path.name)
def test_each_key_the_window_s_table_lists_does_what_it_says(monkeypatch, tmp_path, path):
    """README.md's and live.md's tables of the window's keys against the window: q and Esc stop, i and s toggle the
    info and the side by side view, p saves a PNG, a gives auto focus, + (=) and - open and close the aperture."""
    from test_window16 import _frame, _window

    from stream.controls import LiveControls
    from stream.focus import FocusController
    from stream.sinks import key_char

    keys = _table_keys(path.read_text())
    assert {"a", "+", "-", "p", "s", "i", "q", "Esc"} <= keys, keys
    monkeypatch.chdir(tmp_path)
    window, _, _ = _window(monkeypatch, [])
    said: list[str] = []
    render = load_config("default", {"render.focus": "auto"}).render
    window.controls = LiveControls(FocusController("auto"), render, 480, notify=said.append)
    for key in sorted(keys):
        code = 27 if key == "Esc" else ord(key)
        info, side_by_side, blur = window.info, window.side_by_side, render.blur
        said.clear()
        window._act(code, _frame())
        if key in ("q", "Esc"):
            assert window.wants_stop, key
            window._stop = False
        elif key in ("i", "s"):
            assert (window.info, window.side_by_side) == ((not info, side_by_side) if key == "i" else
                                                          (info, not side_by_side))
        elif key == "p":
            assert len(list(tmp_path.glob("depthcam_*.png"))) == 1
        else:  # what the controls did, in the line each change prints ("x" would print nothing)
            done = {"a": "auto focus", "+": f"blur {blur + 2:g} px", "=": f"blur {blur + 2:g} px",
                    "-": f"blur {blur - 2:g} px"}
            assert said and said[0].startswith(done[key]), (key, said)
    if "keypad" in path.read_text():  # live.md: the keypad's + and - (GTK's KP_Add, KP_Subtract) do the same
        assert (key_char(0xFFAB), key_char(0xFFAD)) == (ord("+"), ord("-"))


def test_the_network_schemes_and_camera_formats_listed_are_those_depthcam_opens():
    """inputs-and-outputs.md's `rtsp:// ... srt://` and `camera:N[?...format=auto|mjpg|yuyv]`, against the code."""
    from stream.camera import CAMERA_FORMATS
    from stream.network_source import NETWORK_SCHEMES

    inputs = _section(_page("inputs-and-outputs.md"), "## Inputs")
    listed = re.search(r"a network stream, `([^`]+)`", inputs).group(1)
    assert set(re.findall(r"([a-z]+)://", listed)) == set(NETWORK_SCHEMES)
    for text in (inputs, _page("live.md"), (ROOT / "README.md").read_text()):
        formats = re.search(r"format=([a-z|]+)", text).group(1)
        assert set(formats.split("|")) == set(CAMERA_FORMATS)
