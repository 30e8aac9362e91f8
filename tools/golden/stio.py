# SPDX-License-Identifier: GPL-3.0-or-later
"""Minimal safetensors reading/writing and per-tensor summaries (numpy only)."""
import json
import os
import struct

import numpy as np

_NP = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


def read(path):
    """{name: float32 ndarray} of one safetensors file (F32/F16/BF16/F64 widened exactly)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, _NP[info["dtype"]]).astype(np.float32)
        out[name] = a.reshape(info["shape"])
    return out


def read_folder(folder):
    """All tensors of every *.safetensors file in a folder."""
    out = {}
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            out.update(read(os.path.join(folder, fn)))
    return out


def write(path, tensors):
    """float32 safetensors, names sorted, packed, header padded with spaces to 8 bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


N_SAMPLES = 64


def sample_indices(numel):
    """64 fixed flat indices, first and last included (fewer when the tensor is smaller)."""
    if numel <= N_SAMPLES:
        return list(range(numel))
    return sorted(set((i * (numel - 1)) // (N_SAMPLES - 1) for i in range(N_SAMPLES)))


def summarize(tensors):
    out = {}
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        flat = a.reshape(-1)
        d = flat.astype(np.float64)
        idx = sample_indices(flat.size)
        out[name] = {
            "shape": list(a.shape),
            "max_abs": float(np.max(np.abs(d))) if flat.size else 0.0,
            "sum": float(d.sum()),
            "sum_sq": float((d * d).sum()),
            "indices": idx,
            "values": [float(flat[i]) for i in idx],
        }
    return out
