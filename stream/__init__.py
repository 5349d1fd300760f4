"""The depthcam pipeline: sources, queues, stages, sinks, metrics, configuration and the CLI."""
import os
import sys

if sys.platform == "win32":
    # OpenCV's Media Foundation backend took seconds to a minute to open many webcams with its hardware transforms on
    # (opencv/opencv#17687, #26495); it reads this once, when cv2 is imported, which every stream module does after
    # this package's import. A user's own setting is kept.
    os.environ.setdefault("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", "0")
