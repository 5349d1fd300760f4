"""Runs the authors' FCRN code (TensorFlow) on random weights: the reference the ONNX graph is tested against.

Made `fcrn_official_seed5.npz` and `NYU_FCRN_official_layout_seed5.ckpt.index` beside this file. Run once,
with TensorFlow 2 (2.21 was used) where depthcam is installed, given a clone of the authors' repository
(github.com/iro-cp/FCRN-DepthPrediction; its `tensorflow/models` package is imported from there, unchanged):

    python tests/data/write_tf_checkpoint.py ckpt/NYU_FCRN.ckpt --seed 5
    python tests/data/run_official_fcrn.py FCRN-DepthPrediction/tensorflow ckpt/NYU_FCRN.ckpt official

It builds `ResNet50UpProj` as the authors' predict.py does (batch 1, a 228x304x3 placeholder, RGB 0..255),
restores the float variables from the checkpoint, saves the whole graph as a checkpoint of its own (the
official layout: also the int64 interleave index variables `x_0` ... `x_3_31` that the graph creates),
and writes its depth for seeded random images (`IMAGE_SEED`, float32 0..255, NHWC).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

IMAGE_SEED = 123
IMAGES = 2  # kept in the .npz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("authors_tensorflow_dir", help="the clone's tensorflow/ folder (holds models/)")
    parser.add_argument("checkpoint", help="prefix written by write_tf_checkpoint.py")
    parser.add_argument("out_dir", help="where the .npz, the official-layout checkpoint and its index go")
    args = parser.parse_args()

    import tensorflow.compat.v1 as tf  # the authors' code is TF 1: run it through TF 2's v1 API

    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf  # their `import tensorflow as tf` gets the v1 API
    sys.path.insert(0, args.authors_tensorflow_dir)
    from models import ResNet50UpProj  # the authors' package

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(IMAGE_SEED).uniform(0, 255, (IMAGES, 228, 304, 3)).astype(np.float32)
    input_node = tf.placeholder(tf.float32, shape=(None, 228, 304, 3))
    net = ResNet50UpProj({"data": input_node}, 1)
    floats = [v for v in tf.global_variables() if v.dtype.base_dtype == tf.float32]
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())  # the x_* index variables get their values here
        tf.train.Saver(var_list=floats).restore(session, args.checkpoint)
        prefix = str(out / "NYU_FCRN.ckpt")
        tf.train.Saver().save(session, prefix, write_meta_graph=False)
        depth = np.stack([session.run(net.get_output(), feed_dict={input_node: images[i:i + 1]})[0, :, :, 0]
                          for i in range(IMAGES)])
    np.savez(out / "fcrn_official_seed5.npz", image_seed=IMAGE_SEED, depth=depth)
    shutil.copy(f"{prefix}.index", out / "NYU_FCRN_official_layout_seed5.ckpt.index")
    print(f"depth {depth.shape}, {depth.min():.3f}..{depth.max():.3f} m; written to {out}")


if __name__ == "__main__":
    main()
