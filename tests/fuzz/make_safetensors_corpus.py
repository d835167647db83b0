#!/usr/bin/env python3
"""Writes the seed corpus for safetensors_fuzz into corpus/safetensors/.

Hand-built files in Hugging Face's layout (length prefix, space-padded JSON
header, data buffer), so the seeds need neither torch nor safetensors.
Run from anywhere; rerunning rewrites the same bytes.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def safetensors_bytes(header_text: str, data: bytes) -> bytes:
    header = header_text.encode("utf-8")
    header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def tensors_file(entries, metadata=None) -> bytes:
    """entries: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return safetensors_bytes(json.dumps(header, separators=(",", ":")), data)


SEEDS = {
    # Every supported dtype, scalar and zero-size shapes, metadata.
    "valid_mixed.safetensors": tensors_file(
        [
            ("bf16", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0xC0A0)),
            ("bool", "BOOL", [3], bytes([1, 0, 1])),
            ("empty", "F32", [0, 3], b""),
            ("f16", "F16", [3], struct.pack("<3H", 0x3C00, 0xC000, 0x7BFF)),
            ("f32", "F32", [2, 2], struct.pack("<4f", 1.5, -0.25, 3.0, 1e-3)),
            ("f64", "F64", [], struct.pack("<d", 2.5)),
            ("i16", "I16", [2], struct.pack("<2h", -7, 300)),
            ("i32", "I32", [2], struct.pack("<2i", -1, 1 << 20)),
            ("i64", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
            ("i8", "I8", [2], struct.pack("<2b", -128, 127)),
            ("u8", "U8", [2, 1], bytes([0, 255])),
        ],
        metadata={"format": "pt"},
    ),
    # Data order differs from name order, as Python's writer does by alignment.
    "valid_unordered.safetensors": safetensors_bytes(
        '{"w":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},'
        '"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}',
        struct.pack("<q2H", 42, 0x3C00, 0x4000),
    ),
    # Rejected: the two tensors overlap in the data buffer.
    "invalid_overlap.safetensors": safetensors_bytes(
        '{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},'
        '"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
        b"abcd",
    ),
    # Rejected: the header length runs past the end of the file.
    "invalid_header_length.safetensors": struct.pack("<Q", 4096) + b'{"a":{}}',
}

os.makedirs(OUT, exist_ok=True)
for name, content in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)
    print(f"{name}: {len(content)} bytes")
