"""`depthcam models convert` as a user with the official weights meets it: into the cache or anywhere, the
file's permissions, an interrupted write, the memory a 254 MB conversion takes, and the weight files given
where a model is expected. The weight files are written in their official formats with random values."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_fcrn_weights import CKPT_NON_PARAMETERS, write_checkpoint, write_python2_npy

import models.fcrn_weights as fw
from models.download import ModelError, sha256_of
from models.fcrn import build_fcrn, random_weights
from models.registry import get_spec, model_state, recorded_checksum, resolve_model
from stream.cli import main


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return random_weights(seed=8)


@pytest.fixture(scope="module")
def official_npy(weights, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("npy") / "NYU_ResNet-UpProj.npy"
    write_python2_npy(path, weights)  # as the authors' Python 2 wrote it
    return path


def _tiny_model() -> onnx.ModelProto:
    """A small model with the fields a converted FCRN has around its weights (metadata after the graph)."""
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["depth"])], "tiny",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 6, 4, 4])],
                              [helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, 4, 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="depthcam")
    helper.set_model_props(model, {"depthcam.model": "fcrn"})
    return model


def test_converting_into_the_cache_over_an_earlier_file_is_not_called_damaged(official_npy, model_cache, capsys):
    """The cache kept the checksum its first conversion recorded: `models convert SRC -o` the cache's file again
    (--fp16 for a GPU, or other weights) gave a good file that `models list` called damaged and every run refused,
    and whose advised fix, `models fetch fcrn`, deleted it to download 472 MB. The new file's checksum is recorded."""
    spec = get_spec("fcrn")
    assert main(["models", "convert", str(official_npy), "-o", str(spec.path)]) == 0
    first = recorded_checksum(spec.path).read_text().split()[0]
    assert first == sha256_of(spec.path) and model_state(spec) == "cached"
    assert main(["models", "convert", str(official_npy), "-o", str(spec.path), "--fp16"]) == 0
    assert recorded_checksum(spec.path).read_text().split()[0] == sha256_of(spec.path) != first
    assert model_state(spec) == "cached"
    assert resolve_model("fcrn", progress=False) == (spec, spec.path)  # what a run with --model fcrn does
    capsys.readouterr()
    assert main(["models", "list"]) == 0 and "damaged" not in capsys.readouterr().out


def test_a_conversion_elsewhere_leaves_no_checksum_file_beside_it(tmp_path, model_cache):
    fw.save_model(_tiny_model(), tmp_path / "fcrn_nyu_depth_v2.onnx")  # the cache's file name, another folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fcrn_nyu_depth_v2.onnx"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_converted_model_gets_the_permissions_of_any_new_file(tmp_path, umask, mode):
    """The temporary file it is written as is the owner's alone (0600), and the rename kept that: a model
    converted into a shared folder, or by root for a service, could not be read by anyone else."""
    old = os.umask(umask)
    try:
        out = fw.save_model(_tiny_model(), tmp_path / "fcrn.onnx")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert onnx.load(str(out)).SerializeToString() == _tiny_model().SerializeToString()


def test_a_conversion_interrupted_while_it_writes_leaves_no_partial_file(tmp_path):
    """Ctrl-C while the 254 MB were being serialised and written left a randomly named `.part` in the cache for
    good (only an OSError was cleaned up); each later conversion would add another."""

    class Interrupted:  # a model whose serialisation meets Ctrl-C
        def __getattr__(self, name):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fw.save_model(Interrupted(), tmp_path / "fcrn.onnx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_written_as_protobuf_would_serialise_it(weights):
    """The converted file is written a tensor at a time (not one 254 MB buffer copied into another): the same
    bytes, fields of every number on both sides of the weights included."""
    import io

    extra = _tiny_model()
    extra.domain, extra.model_version, extra.producer_version = "d", 3, "1"
    extra.graph.value_info.append(helper.make_tensor_value_info("v", TensorProto.FLOAT, [1]))
    for model in (extra, build_fcrn(weights, fp16=True)):
        written = io.BytesIO()
        digest = fw._write_model(model, written)
        assert written.getvalue() == model.SerializeToString()
        assert digest == __import__("hashlib").sha256(written.getvalue()).hexdigest()
    given = dict(weights)
    assert build_fcrn(given, consume=True).SerializeToString() == build_fcrn(weights).SerializeToString()
    assert given == {}  # a conversion's own dict is emptied as the graph takes the weights


# The process's peak resident memory (VmHWM, Linux): ru_maxrss would carry over the forking test process's own.
MEASURE = """
import re, sys
from pathlib import Path
import models.fcrn_weights as fw
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
before = peak_kb()
fw.convert(Path(sys.argv[1]), Path(sys.argv[2]))
print(before, peak_kb())
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak memory from Linux's /proc")
@pytest.mark.parametrize("source", ["npy", "checkpoint"])
def test_converting_the_official_weights_holds_them_little_more_than_once(source, official_npy, weights, tmp_path):
    """A 254 MB conversion peaked at 1.5 GB (6x): the Python 2 pickle's strings were kept by the unpickler besides
    the arrays made of them, the graph was copied three times over by onnx.helper, and its serialisation made
    the file twice in memory. Now 0.45 GB (1.5x over what the imports take). Measured in a process of its own."""
    if source == "npy":
        src = official_npy
    else:
        src = tmp_path / "NYU_FCRN.ckpt"
        write_checkpoint(src, {**weights, **CKPT_NON_PARAMETERS})
    out = tmp_path / "fcrn.onnx"
    done = subprocess.run([sys.executable, "-c", MEASURE, str(src), str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr
    before_kb, peak_kb = map(int, done.stdout.split())
    size = out.stat().st_size
    assert (peak_kb - before_kb) * 1024 < 2.5 * size, f"{(peak_kb - before_kb) / 1024:.0f} MB for {size / 1e6:.0f} MB"
    assert out.read_bytes() == build_fcrn(weights).SerializeToString()


@pytest.mark.parametrize("name, prefix", [("NYU_ResNet-UpProj.npy", None), ("NYU_FCRN-checkpoint.zip", None),
                                          ("NYU_FCRN.ckpt", "NYU_FCRN.ckpt"),
                                          ("NYU_FCRN.ckpt.index", "NYU_FCRN.ckpt"),
                                          ("NYU_FCRN.ckpt.data-00000-of-00001", "NYU_FCRN.ckpt")])
def test_the_official_weights_given_as_the_model_are_sent_to_models_convert(tmp_path, monkeypatch, name, prefix):
    """`--model NYU_ResNet-UpProj.npy` (or the zip, the .index) said only that the file was no complete ONNX
    model, and `--model NYU_FCRN.ckpt` (a checkpoint's prefix, no file) that it was an unknown model."""
    monkeypatch.chdir(tmp_path)
    if prefix:
        for suffix in (".index", ".data-00000-of-00001"):
            Path(prefix + suffix).write_bytes(b"weights")
    else:
        Path(name).write_bytes(b"weights")
    expected = f"{name} is not an ONNX model; .*depthcam models convert {prefix or name} -o fcrn.onnx"
    with pytest.raises(ModelError, match=expected):
        resolve_model(name, progress=False)


def test_other_files_are_still_read_as_models_or_unknown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="unknown model 'missing.npy'"):  # no such file: a name, as before
        resolve_model("missing.npy", progress=False)
    onnx.save(_tiny_model(), "NYU_FCRN.onnx")
    assert resolve_model("NYU_FCRN.onnx", progress=False)[1] == Path("NYU_FCRN.onnx")


def test_an_unreachable_server_names_the_conversion_for_weights_at_hand(tmp_path, monkeypatch):
    """Offline, `--config quality` (FCRN) said to check the network or place the archive in the cache by hand;
    a user holding NYU_FCRN.ckpt or the .npy was not told that converting them into the cache does it."""
    monkeypatch.setattr(fw, "OFFICIAL_URL", (tmp_path / "unreachable.zip").as_uri())
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"cannot download .*check the network.*depthcam models convert "
                                         r"NYU_FCRN\.ckpt \(or NYU_ResNet-UpProj\.npy\) -o "
                                         + str(cache / fw.ONNX_NAME).replace(".", r"\.")):
        fw.fetch_official(cache, progress=False)
