"""The demo's built-in sample clip: written once, reused, and written again when it no longer decodes."""
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
