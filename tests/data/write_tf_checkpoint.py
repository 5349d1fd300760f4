"""Writes FCRN's official variable set as a TensorFlow checkpoint, the way the official code saves it.

Made `NYU_FCRN_seed5.ckpt.index` beside this file, which the tests read (the 254 MB data file is rebuilt
there from the same weights): run once, with TensorFlow (2.21 was used) where depthcam is installed:

    pip install tensorflow-cpu && python tests/data/write_tf_checkpoint.py ckpt/NYU_FCRN.ckpt --seed 5

Each layer is a `tf.compat.v1.variable_scope` holding `get_variable`s named as in the official
network.py (`weights`, `biases`, `scale`, `offset`, `mean`, `variance`), saved by
`tf.compat.v1.train.Saver` (tensor bundle V2: `.index` + `.data-00000-of-00001`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models.fcrn import random_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="checkpoint prefix to write, e.g. ckpt/NYU_FCRN.ckpt")
    parser.add_argument("--seed", type=int, default=5, help="random_weights seed (the tests use 5)")
    args = parser.parse_args()
    tf.compat.v1.disable_eager_execution()
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in random_weights(args.seed).items():
        layer, param = name.split("/")
        layers.setdefault(layer, {})[param] = value.astype(np.float32)
    for layer, params in layers.items():
        with tf.compat.v1.variable_scope(layer):
            for param, value in params.items():
                tf.compat.v1.get_variable(param, shape=value.shape, dtype=tf.float32,
                                          initializer=tf.compat.v1.constant_initializer(value),
                                          trainable=param not in ("mean", "variance"))
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        print(saver.save(session, args.prefix, write_meta_graph=False))


if __name__ == "__main__":
    main()
