"""Films streamed from disk through tf.data for distributed training: each film is read and
preprocessed when its batch comes (pneumo.data.image_cache.film_uint8, the cache's own pixels),
so no cohort is ever held in memory whole."""
from __future__ import annotations

import numpy as np

from pneumo.data.image_cache import film_uint8

READERS = 2   # films decoded in parallel per input pipeline (the machines we test on have 2 cores)


def films(paths, size: int, *columns):
    """tf.data of (uint8 film (size, size), *the rows of `columns`), in the order of `paths`."""
    import tensorflow as tf

    def read(path, *rest):
        film = tf.numpy_function(lambda p: film_uint8(p.decode(), size), [path], tf.uint8, stateful=False)
        film.set_shape((size, size))
        return (film,) + rest
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=str),) + tuple(columns))
    return ds.map(read, num_parallel_calls=READERS, deterministic=True)


def to_unit(xb):
    """A uint8 batch (b, S, S) as the model's input: float in [0, 1], (b, S, S, 1)."""
    import tensorflow as tf
    return tf.cast(xb, tf.float32)[..., None] / 255.0


def stream_outputs(model, paths, size: int, batch: int = 64) -> list[np.ndarray]:
    """The model's outputs (a list, one array per output) over films streamed from disk."""
    return stream_passes(model, paths, size, [None], batch)[0]


def stream_passes(model, paths, size: int, transforms: list, batch: int = 64) -> list[list[np.ndarray]]:
    """The model's outputs once per transform (None: the film as it is; else applied to each float
    batch first, e.g. an augmentation), all from one read of each film."""
    outs = [[] for _ in transforms]
    for (xb,) in films(paths, size).batch(batch).prefetch(2):
        x = to_unit(xb)
        for out, transform in zip(outs, transforms):
            y = model(x if transform is None else transform(x), training=False)
            out.append([np.asarray(o) for o in (y if isinstance(y, (list, tuple)) else [y])])
    return [[np.concatenate(parts) for parts in zip(*out)] if out else [] for out in outs]
