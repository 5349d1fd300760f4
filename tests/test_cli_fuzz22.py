"""Defects a fuzz of every flag and config key found (session 22): each try either works or is refused in one
short line naming the problem, exit 2, no traceback."""
from pathlib import Path

import pytest

from stream.cli import main
from stream.config import SHOWN_CHARS, load_config
from stream.errors import UserError

SCENE = "synthetic:portrait?frames=1&size=96x72"
LONG = 500  # PyYAML takes a plain key of up to 1024 characters


def _refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert "\n" not in message
    return message.replace(str(path), "FILE")


# Each value or key shown in the message was written out whole: a line thousands of characters long
@pytest.mark.parametrize("text, needle", [
    ("render:\n  blur: 1" + "0" * 5000 + "\n", "is not a valid !!int"),  # past Python's int digits limit
    ("render:\n  blur: !!float " + "x" * 3000 + "\n", "is not a valid !!float"),
    ("render:\n  blur: !" + "t" * 3000 + " 1\n", "could not determine a constructor"),
    ("render: *" + "a" * 3000 + "\n", "found undefined alias"),
    ("k" * LONG + ": 1\n", "unknown config key"),
    ("render:\n  " + "k" * LONG + ": 1\n", "unknown config key 'render.kkk"),
    ("k" * LONG + ": 1\n" + "k" * LONG + ": 2\n", "twice (lines 1 and 2)"),
    ("k" * LONG + "\nrender:\n  blur: 1\n", "needs a colon after it"),
])
def test_a_long_value_or_key_is_cut_in_the_message(tmp_path, text, needle):
    message = _refused(tmp_path, text)
    assert needle in message, message
    assert "..." in message
    # the message's own words, and each shown value cut to SHOWN_CHARS, twice over for the colon's ({word}:)
    assert len(message) < 2 * SHOWN_CHARS + 200, message


def test_a_short_value_is_shown_whole(tmp_path):
    message = _refused(tmp_path, "render:\n  blur: !!float abc\n")
    assert "'abc' is not a valid !!float at line 2" in message


@pytest.mark.parametrize("flag, needle", [
    ("--blur", "--blur: render.blur must be a finite number in [0, 256], got -inf"),
    ("--focus", "--focus: render.focus must be a finite number in [0, 1], got -inf"),
    ("--highlight-boost", "render.highlight_boost must be a finite number"),
])
def test_minus_inf_is_a_value_not_a_missing_one(tmp_path, capsys, flag, needle):
    """`--blur -inf` said "argument --blur: expected one argument", as if no value were given."""
    code = main(["run", SCENE, flag, "-inf", "-o", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err, err
    assert "expected one argument" not in err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("value", ["-inf", "-NaN", "-Infinity"])
def test_minus_inf_reaches_the_options_own_check(capsys, value):
    with pytest.raises(SystemExit) as caught:
        main(["run", SCENE, "--start", value])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert f"argument --start: '{value}' is not a time" in err, err


def test_a_word_after_a_minus_is_still_an_option(capsys):
    """Only the numbers' words join the option before: `--blur -o x` still reads -o as an option."""
    with pytest.raises(SystemExit) as caught:
        main(["run", SCENE, "--blur", "-o", "x.mp4"])
    assert caught.value.code == 2
    assert "argument --blur: expected one argument" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["tcmonodepth", "fcrn"])
def test_models_info_refuses_an_empty_model_size(capsys, name):
    """`models info NAME --model-size ""` (an unset shell variable) was taken as no size and printed the model's
    info, exit 0, where `run --model-size ""` refuses it."""
    code = main(["models", "info", name, "--model-size", ""])
    err = capsys.readouterr().err
    assert code == 2
    assert "model_size (--model-size) must be WIDTHxHEIGHT, e.g. 518x518, got ''" in err, err


def test_models_info_refuses_an_empty_model_size_for_a_file(shared_models, capsys):
    """Your own .onnx file too: it was loaded and described at its own size."""
    from models.registry import get_spec

    model = shared_models / get_spec("tcmonodepth").filename
    code = main(["models", "info", str(model), "--model-size", ""])
    captured = capsys.readouterr()
    assert code == 2
    assert "must be WIDTHxHEIGHT, e.g. 518x518, got ''" in captured.err, captured.err
    assert "state:" not in captured.out


def test_a_video_given_as_the_config_is_named_so(tmp_path):
    """`--config clip.mp4` (the input given in its place) said "is not UTF-8 text ...; save it as UTF-8 YAML"."""
    from media import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=2, audio_codec=None)
    with pytest.raises(UserError) as caught:
        load_config(str(clip))
    message = str(caught.value)
    assert "is no text but binary data (a .mp4 file: a video, picture or model?)" in message, message
    assert "give a YAML file or a preset (default," in message
    assert "save it as UTF-8" not in message


def test_a_latin1_yaml_file_is_still_told_to_be_saved_as_utf8(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_bytes("render:\n  focus: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"is not UTF-8 text \(byte 0xe9 at line 2, column 13\); save it as UTF-8"):
        load_config(str(path))
