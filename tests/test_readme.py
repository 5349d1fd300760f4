"""The README's command-line summary against the parser that `depthcam` really has: every option it names
exists, every option a command has is named, and the defaults it gives are the parser's."""
import argparse
import re
from pathlib import Path

import pytest

from stream.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_PAGE = README.parent / "docs" / "python.md"  # the "From Python" reference the README links to
LEFT_TO_THE_TEXT = {"-h", "--help", "--debug"}  # --debug has its own sentence under the block


def _summary() -> dict[str, str]:
    """The `## Command line` block's lines, by command (a line that starts with spaces continues the one above)."""
    text = README.read_text()
    block = text[text.index("## Command line"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    commands: dict[str, str] = {}
    command = None
    for line in block.splitlines():
        start = re.match(r"depthcam (\w+)", line)
        if start:
            command = start.group(1)
        elif line and not line.startswith(" "):
            command = None  # `python -m stream ...`
        if command is not None:
            commands[command] = commands.get(command, "") + " " + line.split("#")[0]
    return commands


def _documented(line: str) -> set[str]:
    options = set(re.findall(r"(?<![\w-])-[a-z](?![\w-])", line))
    for negatable, name in re.findall(r"--(\[no-\])?([a-z][a-z0-9-]*)", line):
        options.add(f"--{name}")
        if negatable:
            options.add(f"--no-{name}")
    return options


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices


def _options(parser: argparse.ArgumentParser) -> set[str]:
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _options(sub)
        else:
            options |= set(action.option_strings)
    return options


@pytest.mark.parametrize("command", ["run", "bench", "models", "doctor"])
def test_the_readme_s_summary_names_each_option_of_the_command(command):
    parser = _commands()[command]
    documented = _documented(_summary()[command])
    assert documented - _options(parser) == set()  # nothing the parser does not take
    actions = [action for sub in [parser, *_subcommands(parser)] for action in sub._actions
               if action.option_strings and not set(action.option_strings) & LEFT_TO_THE_TEXT]
    missing = [action.option_strings for action in actions if not set(action.option_strings) & documented]
    assert missing == []  # each option named in one of its spellings (`-o` for `--output`)


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [sub for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for sub in action.choices.values()]


def test_demo_takes_the_options_of_run():
    """`depthcam demo [-o OUTPUT] [same options]`."""
    assert "[same options]" in _summary()["demo"]
    commands = _commands()
    assert _options(commands["demo"]) == _options(commands["run"])


def test_the_defaults_the_summary_gives_are_the_parser_s():
    bench = _commands()["bench"]
    for option, default in re.findall(r"\[(--[a-z-]+) N \((\d+)\)\]", _summary()["bench"]):
        action = next(action for action in bench._actions if option in action.option_strings)
        assert action.default == int(default), option


def test_run_s_help_says_the_device_and_the_depth_as_they_are():
    """`--device` said "default auto" where a preset's (live-cpu: cpu) is the default; `--save-depth` said
    "a colour video" where a photo's depth is a picture and a folder gets NAME_depth.mp4."""
    run = _commands()["run"]
    helps = {option: action.help for action in run._actions for option in action.option_strings}
    assert "the config's" in helps["--device"]
    assert "a picture for a photo" in helps["--save-depth"] and "folder" in helps["--save-depth"]
    assert "null, window or vcam" in helps["--output"]


def test_the_readme_s_python_example_runs_and_its_signatures_are_the_kernels(tmp_path, monkeypatch):
    """The "From Python" page (docs/python.md): its example runs as written (on a photo and a disparity made
    here), and each function it lists is given with the signature the kernels really have."""
    import inspect
    import re

    import cv2
    import numpy as np

    import kernels

    section = PYTHON_PAGE.read_text()
    section = section[section.index("# From Python"):section.index("## The depth itself")]
    start = section.index("```python") + len("```python")
    example = section[start:section.index("```", start)]
    rng = np.random.default_rng(0)
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("photo.jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    np.save("disparity.npy", rng.random((12, 16)))
    exec(compile(example, "docs/python.md", "exec"), {})
    assert cv2.imread("portrait.jpg").shape == (48, 64, 3)
    listed_functions = re.findall(r"`kernels\.(\w+)\(([^`]*)\)`", section)
    listed_names = [name for name, _ in listed_functions]
    assert listed_names == ["joint_bilateral", "refine_live", "depth_of_field", "focus_band"]
    for name, listed in listed_functions:
        signature = inspect.signature(getattr(kernels, name))
        bare = signature.replace(parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
                                 return_annotation=signature.empty)
        assert "(" + " ".join(listed.replace('"', "'").split()) + ")" == str(bare), name


def test_the_readme_s_depth_example_runs_on_the_real_model(shared_models):
    """docs/python.md's depth snippet as written, on a real frame: a disparity in [0, 1] at the network's size."""
    import numpy as np
    from skimage import data

    section = PYTHON_PAGE.read_text()
    start = section.index("```python", section.index("## The depth itself")) + len("```python")
    example = section[start:section.index("```", start)]
    namespace = {"frame": np.ascontiguousarray(data.astronaut()[:, :, ::-1])}
    exec(compile(example, "docs/python.md", "exec"), namespace)
    disparity = namespace["disparity"]
    assert disparity.dtype == np.float32 and disparity.ndim == 2 and 0 <= disparity.min() < disparity.max() <= 1
    import models

    assert models.ModelError.__name__ == "ModelError" and "DepthEstimator" in models.__all__
