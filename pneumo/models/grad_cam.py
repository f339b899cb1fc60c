"""Grad-CAM of the pneumonia log-odds on a bundle's Keras model: the reference every runtime's
map is checked against (the Keras runner runs it; the LiteRT export is checked against it)."""
from __future__ import annotations

import keras
import tensorflow as tf

from pneumo.models.network import LAST_CONV_LAYER, member_encoders


def conv_models(encoder: keras.Model) -> list[keras.Model]:
    """Per backbone (one, or each member of a seed ensemble): image -> (last conv maps, early, late)."""
    return [keras.Model(m.inputs, [m.get_layer(LAST_CONV_LAYER).output, *m.outputs]) for m in member_encoders(encoder)]


def grad_cam_function(encoder: keras.Model, head: keras.Model, size: int, n_tests: int) -> tf.types.experimental.PolymorphicFunction:
    """A tf.function (image (1,S,S,1), present (1,1), standardised labs (1,T), missing (1,T)) ->
    heat (h, w) in [0, 1]: each last conv map weighted by its mean gradient, summed over every
    member (the ensemble's score depends on each member's maps), ReLU, scaled to its maximum."""
    convs_of = conv_models(encoder)

    @tf.function(input_signature=[tf.TensorSpec((1, size, size, 1), tf.float32), tf.TensorSpec((1, 1), tf.float32),
                                  tf.TensorSpec((1, n_tests), tf.float32), tf.TensorSpec((1, n_tests), tf.float32)])
    def cam(image, present, labs, missing):
        with tf.GradientTape() as tape:
            outs = [m(image, training=False) for m in convs_of]     # per member: conv, early, late
            convs = [o[0] for o in outs]
            for conv in convs:
                tape.watch(conv)
            early, late = (tf.concat([o[i] for o in outs], axis=-1) for i in (1, 2))
            probs = head([early, late, present, labs, missing], training=False)
            score = tf.math.log(probs[:, 1] + 1e-7) - tf.math.log(probs[:, 0] + 1e-7)
        grads = tape.gradient(score, convs)
        total = tf.add_n([tf.reduce_sum(tf.reduce_mean(g, axis=(1, 2), keepdims=True) * c, axis=-1)
                          for g, c in zip(grads, convs)])
        heat = tf.nn.relu(total)[0]
        return heat / (tf.reduce_max(heat) + 1e-9)

    return cam
