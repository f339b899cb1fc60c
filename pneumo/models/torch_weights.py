"""A PyTorch state dict read into NumPy arrays without PyTorch.

Both formats torch.save has written: the legacy one (pickles, then each storage's raw bytes) and
the zip one (torch >= 1.6: `archive/data.pkl` plus one file per storage). The unpickler admits only
the handful of names a state dict holds, so a hostile file cannot run code while it is read."""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from pneumo.errors import PneumoError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = dtype, None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        item = np.dtype(self.storage.dtype).itemsize
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], self.size,
                                               tuple(s * item for s in self.stride), writeable=False)
        return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    """Only what a state dict of tensors needs; anything else is refused, never imported."""

    def __init__(self, file, storage_of):
        super().__init__(file)
        self._storage_of = storage_of

    def find_class(self, module, name):
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise PneumoError(f"this weights file asks for {module}.{name}: not a plain state dict, refused")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], str(pid[2])
        if kind != "storage" or storage_type not in _DTYPES:
            raise PneumoError(f"this weights file holds an unsupported storage ({kind}, {storage_type})")
        return self._storage_of(key, _DTYPES[storage_type])


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """name -> array for every tensor of a torch.save'd state dict (integer counters included)."""
    path = Path(path)
    storages: dict[str, _Storage] = {}

    def storage_of(key, dtype):
        return storages.setdefault(key, _Storage(dtype))
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                pkl = next(n for n in names if n.endswith("/data.pkl"))
                root = pkl[:-len("data.pkl")]
                state = _Unpickler(io.BytesIO(zf.read(pkl)), storage_of).load()
                for key, st in storages.items():
                    st.data = np.frombuffer(zf.read(f"{root}data/{key}"), st.dtype)
        else:
            with open(path, "rb") as f:
                strict = lambda: _Unpickler(f, storage_of).load()   # every pickle of the file, refused names included
                if strict() != LEGACY_MAGIC:
                    raise PneumoError(f"{path.name} is not a torch.save file")
                strict(), strict()                   # protocol version, system info
                state = strict()
                for key in strict():
                    count, = struct.unpack("<q", f.read(8))
                    st = storages[str(key)]
                    st.data = np.frombuffer(f.read(count * np.dtype(st.dtype).itemsize), st.dtype)
    except PneumoError:
        raise
    except (OSError, EOFError, StopIteration, KeyError, ValueError, pickle.UnpicklingError, struct.error) as err:
        raise PneumoError(f"{path.name} could not be read as a PyTorch state dict ({type(err).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, _Tensor) for v in state.values()):
        raise PneumoError(f"{path.name} is not a state dict of tensors")
    return {name: tensor.array() for name, tensor in state.items()}
