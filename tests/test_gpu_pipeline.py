"""The pipeline's stages on the GPU against the same stages on the CPU (marker `gpu`)."""
import numpy as np
import pytest

from kernels.backend import is_cupy_array, to_host
from stream.config import load_config
from stream.focus import FocusController
from stream.frame import Frame
from stream.stages import RefineStage, RenderStage
from stream.synthetic import SyntheticPortrait, SyntheticScene

pytestmark = pytest.mark.gpu


def _frames(count=3, size=(320, 240)):
    scene = SyntheticPortrait(SyntheticScene(*size, seed=3))
    rng = np.random.default_rng(0)
    frames = []
    for index in range(count):
        image, truth = scene.render(index * 7)
        coarse = truth[::2, ::2] + rng.normal(0, 0.02, truth[::2, ::2].shape).astype(np.float32)
        frames.append(Frame(index=index, capture_ns=0, image=image, disparity=coarse.astype(np.float32)))
    return frames


def _copy(frames):
    return [Frame(index=f.index, capture_ns=0, image=f.image.copy(), disparity=f.disparity.copy()) for f in frames]


@pytest.mark.parametrize("mode", ["full", "live", "off"])
def test_refine_on_gpu_matches_cpu(mode):
    config = load_config("default", {"refine.mode": mode, "refine.radius": 8, "refine.sigma_spatial": 6.0})
    frames = _frames()
    gpu = RefineStage(config.refine, "cuda").process(_copy(frames))
    cpu = RefineStage(config.refine, "cpu").process(_copy(frames))
    for g, c in zip(gpu, cpu, strict=True):
        # the refined map stays on the GPU, beside the frame uploaded once, for the renderer
        assert is_cupy_array(g.refined) and is_cupy_array(g.extra["gpu_image"])
        assert g.refined.shape == c.refined.shape
        np.testing.assert_allclose(to_host(g.refined), c.refined, atol=1e-4)


def test_render_on_gpu_matches_cpu():
    config = load_config("default", {"refine.mode": "off", "render.focus": 0.8})
    frames = RefineStage(config.refine, "cuda").process(_frames())
    host_frames = [Frame(index=f.index, capture_ns=0, image=f.image, refined=to_host(f.refined)) for f in frames]
    gpu = RenderStage(config.render, FocusController(0.8), "cuda").process(frames)
    cpu = RenderStage(config.render, FocusController(0.8), "cpu").process(host_frames)
    for g, c in zip(gpu, cpu, strict=True):
        assert isinstance(g.output, np.ndarray) and g.output.dtype == np.uint8 and "gpu_image" not in g.extra
        difference = np.abs(g.output.astype(np.int16) - c.output.astype(np.int16))
        assert difference.mean() <= 1.0 and np.mean(difference > 1) <= 0.01  # the renderer's own CUDA/CPU tolerance


def test_auto_focus_reads_the_refined_map_on_the_gpu():
    """Every focus path (the subject without a face, face box, tapped point) computed from a CuPy map equals
    the host's; only the value comes back."""
    import cupy

    from stream.focus import disparity_at, subject_disparity

    frames = RefineStage(load_config("default", {"refine.mode": "off"}).refine, "cuda").process(_frames(1))
    image, refined = frames[0].image, frames[0].refined
    host = cupy.asnumpy(refined)
    assert subject_disparity(refined) == pytest.approx(subject_disparity(host), abs=1e-6)
    assert disparity_at(refined, 150, 90) == pytest.approx(disparity_at(host, 150, 90), abs=1e-6)

    class OneFace:  # the face-box median, whatever the detector finds in the synthetic frame
        def faces(self, image_bgr):
            return [(100, 40, 80, 90)]

        def largest_face(self, image_bgr):  # the detector's interface before faces()
            return (100, 40, 80, 90)

    for point in (None, (150, 90)):
        on_gpu, on_host = FocusController("auto", point=point), FocusController("auto", point=point)
        on_gpu._faces = on_host._faces = OneFace()
        assert on_gpu.update(image, refined) == pytest.approx(on_host.update(image, host), abs=1e-6)


def test_depth_stays_on_the_gpu_with_the_cuda_provider(shared_models):
    import onnxruntime as ort

    from models.registry import resolve_model
    from models.runtime import DepthEstimator

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this ONNX Runtime build has no CUDA provider (install onnxruntime-gpu)")
    spec, path = resolve_model("tcmonodepth", progress=False)
    estimator = DepthEstimator(spec, path, "cuda")
    image = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    on_device = estimator.predict([image], on_device=True)[0]
    on_host = estimator.predict([image])[0]
    assert type(on_device).__module__.startswith("cupy")
    import cupy

    # CuPy's own memory, not a view of ONNX Runtime's: that is handed to the next run once the OrtValue goes
    assert not isinstance(on_device.data.mem, cupy.cuda.UnownedMemory)
    np.testing.assert_allclose(on_device.get(), on_host, rtol=1e-5, atol=1e-5)
