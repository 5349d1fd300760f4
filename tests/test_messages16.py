"""Messages a new user met (config file, model file, --device cuda): each names the problem and the fix in words
the user can act on, where they type it."""
import sys
from pathlib import Path

import pytest

from stream.config import ConfigErrors, load_config
from stream.errors import UserError


def _refusal(tmp_path: Path, text: str, overrides: dict | None = None) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_config(str(path), overrides)
    return str(caught.value)


# --- 1: a misspelt word in a choice-or-number key

@pytest.mark.parametrize("word", ["auot", "atuo", "Auto "])
def test_focus_a_misspelt_auto_in_a_file_is_told_auto(tmp_path, word):
    """`focus: auot` got no suggestion, though `device: gpu` got "did you mean cuda?"."""
    message = _refusal(tmp_path, f"render:\n  focus: '{word}'\n")
    assert message == (f"config file {tmp_path / 'mine.yaml'}, line 2: render.focus must be 'auto' or a disparity "
                       f"in [0, 1], got {word!r} (did you mean auto?)")


def test_focus_a_misspelt_auto_from_the_flag_is_told_auto():
    with pytest.raises(UserError, match=r"^--focus: render\.focus must be .* got 'aut' \(did you mean auto\?\)$"):
        load_config(None, {"render.focus": "aut"})


def test_focus_a_word_that_is_no_auto_gets_no_suggestion(tmp_path):
    assert _refusal(tmp_path, "render:\n  focus: near\n").endswith("got 'near'")


# --- 2: every mistake of a file at once, in line order

def test_config_two_mistakes_are_both_said_in_line_order(tmp_path):
    """Line 4's `device: gpu` was said alone, and before line 3's (validate() checks device first)."""
    path = tmp_path / "mine.yaml"
    path.write_text("render:\n  blur: 4\n  focus: auot\ndevice: gpu\n")
    with pytest.raises(ConfigErrors) as caught:
        load_config(str(path))
    assert str(caught.value).splitlines() == [
        f"config file {path}, line 3: render.focus must be 'auto' or a disparity in [0, 1], got 'auot' "
        f"(did you mean auto?)",
        f"config file {path}, line 4: device must be one of auto, cpu, cuda, got 'gpu' (did you mean cuda?)"]


def test_config_unknown_keys_and_bad_values_are_said_together_in_line_order(tmp_path):
    lines = _refusal(tmp_path, "refine:\n  radius: 40\nrender:\n  bluur: 3\n  focus: 2\ndevice: gpu\n",
                     {"render.blur": -1.0}).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"config file {tmp_path / 'mine.yaml'}, line 2", f"unknown config key 'render.bluur' in "
        f"{tmp_path / 'mine.yaml'}, line 4 (did you mean 'render.blur'?)", f"config file {tmp_path / 'mine.yaml'}, "
        f"line 5", f"config file {tmp_path / 'mine.yaml'}, line 6", "--blur"]  # the command line's last


def test_config_one_mistake_keeps_its_one_line_and_its_type(tmp_path):
    from stream.config import ConfigValueError

    assert "\n" not in _refusal(tmp_path, "device: gpu\n")
    with pytest.raises(ConfigValueError):  # the flag's error is as before, for callers that catch it
        load_config(None, {"deinterlace": "yadif"})


def test_config_a_good_file_after_its_mistakes_are_found_is_untouched(tmp_path):
    """Finding every mistake sets each found one back to its default: nothing of that reaches a good run."""
    path = tmp_path / "mine.yaml"
    path.write_text("render:\n  blur: 5\n  focus: 0.3\nrefine:\n  radius: 7\n")
    config = load_config(str(path))
    assert (config.render.blur, config.render.focus, config.refine.radius) == (5.0, 0.3, 7)


# --- 3: a section's name without its colon

@pytest.mark.parametrize("text, line, word", [
    ("render\n  focus: auto\n", 1, "render"),
    ("device: cpu\n# the look\nrender\n  blur: 3\n  focus: auto\n", 3, "render"),
    ("render:\n  blur: 3\nrefine   # mine\n  radius: 4\n", 3, "refine"),
    # a bare word last, or beside keys of its own indent: PyYAML's "could not find expected ':'" at the line after
    # (which names a line past the end), or mapping values at the next key
    ("device: cpu\nrender\n", 2, "render"),
    ("device: cpu\nrender\nmodel: tcmonodepth\n", 2, "render"),
    ("render\ndevice: cpu\n", 1, "render"),
    ("render:\n  blur: 3\n  focus\n", 3, "focus"),
])
def test_config_a_section_without_its_colon_is_told_so(tmp_path, text, line, word):
    """It got the hint about a key indented unlike the others of its section."""
    assert _refusal(tmp_path, text) == (f"config file {tmp_path / 'mine.yaml'}, line {line}: '{word}' needs a colon "
                                        f"after it ({word}:)")


@pytest.mark.parametrize("text", ['model:\n  midas\ndevice: "cpu', "note: |\n  hello\n  world\ndevice: [cpu"])
def test_config_a_value_on_its_own_line_is_not_taken_for_a_section(tmp_path, text):
    """A key's value on its own line, or a block scalar's text, with the real mistake further down: the hint named
    `midas` or `hello` as wanting a colon."""
    refusal = _refusal(tmp_path, text)
    assert "is not valid YAML" in refusal and "needs a colon" not in refusal


def test_config_a_badly_indented_key_keeps_its_own_hint(tmp_path):
    assert "is a key indented unlike the others" in _refusal(tmp_path, "render:\n  blur: 3\n   focus: auto\n")


# --- 4: a model file that is text, or that does not parse

def _load(path: Path) -> str:
    from models.download import ModelError
    from models.registry import resolve_model
    from models.runtime import DepthEstimator

    spec, resolved = resolve_model(str(path), progress=False)
    with pytest.raises(ModelError) as caught:
        DepthEstimator(spec, resolved, "cpu")
    return str(caught.value)


@pytest.mark.parametrize("content, start", [
    (b"hello\n", "hello"), ("café au lait\nsecond line".encode(), "café au lait"),
    (b'{"error": "not found"}', '{"error": "not found"}'),  # a download's error answer
    (b"x" * 80, "x" * 37 + "..."),  # protobuf that parses (ONNX Runtime: "No graph was found")
])
def test_model_a_text_file_is_named_as_text(tmp_path, content, start):
    """ONNX Runtime's "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : ... Protobuf parsing failed." was pasted."""
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    assert _load(path) == (f"model file {path} is a text file, not an ONNX model (it starts {start!r}); give the "
                           f"model's .onnx file itself (download or export it again)")


def test_model_a_file_that_does_not_parse_is_said_plainly(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00garbage" * 100)
    assert _load(path) == (f"model file {path} is not a complete ONNX model (it cannot be parsed); download or "
                           f"export it again")


def test_model_a_real_model_cut_short_is_said_plainly(shared_models, tmp_path):
    from models.registry import get_spec

    path = tmp_path / "cut.onnx"
    path.write_bytes((shared_models / get_spec("tcmonodepth").filename).read_bytes()[:5000])
    message = _load(path)
    assert "is not a complete ONNX model (it cannot be parsed)" in message and "ONNXRuntimeError" not in message


def test_model_another_refusal_keeps_onnx_runtime_s_words_without_its_code(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")  # protobuf that parses: IR version 7, and no graph
    message = _load(path)
    assert message.startswith(f"model file {path} could not be loaded as ONNX (") and "graph" in message
    assert "[ONNXRuntimeError]" not in message and "Load model from" not in message


# --- 5: --device cuda without CuPy, said to a command-line user and to a Python caller in their own words

@pytest.fixture
def without_cupy(monkeypatch):
    """CuPy not installed (None in sys.modules: `import cupy` raises ModuleNotFoundError), and no CUDA."""
    import kernels.backend
    import models.runtime

    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(kernels.backend, "cuda_available", lambda: False)
    monkeypatch.setattr(models.runtime, "cuda_available", lambda: False)


CLI_WORDS = ("--device cuda (or a config's device: cuda) was requested but CuPy is not installed; install it with "
             "pip install 'depthcam[cuda]' (CUDA 13) or 'depthcam[cuda12]', or run with --device cpu")


def test_cuda_the_command_line_s_words_name_the_command_and_the_flag(without_cupy):
    from kernels.backend import BackendUnavailable, cuda_device_error, resolve_backend

    assert cuda_device_error() == CLI_WORDS
    with pytest.raises(BackendUnavailable) as caught:
        resolve_backend("cuda")
    assert caught.value.cli_message == CLI_WORDS  # what the CLI says of the kernels' refusal


def test_cuda_the_python_api_s_words_name_its_argument(without_cupy):
    import numpy as np

    import kernels
    from kernels.backend import BackendUnavailable

    with pytest.raises(BackendUnavailable) as caught:
        kernels.depth_of_field(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), 0.5, 4.0, backend="cuda")
    assert str(caught.value) == ("backend='cuda' was requested but CuPy is not installed; install it with pip install "
                                 "'depthcam[cuda]' (CUDA 13) or 'depthcam[cuda12]', or pass backend='cpu'")


def test_cuda_the_network_s_refusal_is_the_command_line_s(without_cupy):
    from models.download import ModelError
    from models.runtime import requested_providers

    with pytest.raises(ModelError) as caught:
        requested_providers("cuda")
    assert str(caught.value) == CLI_WORDS


def test_cuda_doctor_says_the_cause_and_the_fix_once_each(without_cupy):
    from stream.doctor import _gpu

    check = _gpu()
    assert check.detail == "kernels on the CPU: CuPy is not installed"
    assert check.fix == ("where there is an NVIDIA GPU: install it with pip install 'depthcam[cuda]' (CUDA 13) or "
                         "'depthcam[cuda12]'")
