"""The demo's built-in sample clip: written once, reused, and written again when it no longer decodes."""
from pathlib import Path

from media import probe
from stream.sample import SAMPLE_FPS, SAMPLE_SECONDS, SAMPLE_SIZE, write_sample


def test_the_sample_is_reused_and_a_damaged_one_is_written_again(tmp_path):
    path = write_sample(tmp_path / "sample.mp4")
    info = probe(path)
    assert (info["width"], info["height"]) == SAMPLE_SIZE and info["frames"] == SAMPLE_FPS * SAMPLE_SECONDS
    assert info["audio_codec"] == "aac" and info["audio_seconds"] > SAMPLE_SECONDS - 0.1
    written = path.stat().st_mtime_ns
    assert write_sample(path) == path and path.stat().st_mtime_ns == written  # reused as it is

    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # an interrupted copy
    write_sample(path)
    assert probe(path)["frames"] == SAMPLE_FPS * SAMPLE_SECONDS


def test_a_sample_that_cannot_be_written_leaves_no_half_clip_and_the_demo_says_where(tmp_path, monkeypatch, capsys):
    """`depthcam demo` in a read-only folder or on a full disk ended in 'OSError: [Errno 30] ...: out'."""
    import errno

    import av

    from stream import cli

    def disk_full(name, mode="r", **kwargs):
        Path(name).write_bytes(b"half a clip")
        raise av.error.OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(av, "open", disk_full)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 2
    assert "cannot write the demo's sample clip into " in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []
