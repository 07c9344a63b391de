"""OCR for photos and scans: RapidOCR (PP-OCRv4 on ONNX Runtime), run offline.

RapidOCR ships its models in the wheel (Chinese + English recognition, which reads
French too, mostly without accents; names are compared accent-free anyway). It is an
optional extra: ``pip install 'healthspace[ocr]'``. It returns text boxes; boxes on
the same baseline are joined into lines, left to right, with their mean confidence.
Runs only inside the limited worker process (``_labs_worker``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image

__all__ = ["OcrLine", "ocr_available", "ocr_lines"]

MODULE = "rapidocr_onnxruntime"


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    top: float


def ocr_available() -> bool:
    try:
        importlib.import_module(MODULE)
    except ImportError:
        return False
    return True


@cache
def _engine() -> Any:
    module = importlib.import_module(MODULE)
    # One thread: ONNX Runtime's default pool spins on every core, which doubles the CPU
    # spent (and the RLIMIT_CPU used) for little gain, and starves a busy server.
    return module.RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


@dataclass
class _Box:
    x: float
    top: float
    bottom: float
    text: str
    score: float

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def _boxes(result: list[Any] | None) -> list[_Box]:
    out = []
    for points, text, score in result or []:
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        if str(text).strip():
            out.append(_Box(min(xs), min(ys), max(ys), str(text).strip(), float(score)))
    return out


def _group(boxes: list[_Box]) -> list[list[_Box]]:
    """Boxes whose vertical middles fall inside one another's height: one line."""
    lines: list[list[_Box]] = []
    for box in sorted(boxes, key=lambda b: b.middle):
        for line in lines:
            top = min(b.top for b in line)
            bottom = max(b.bottom for b in line)
            height = bottom - top
            if top + height * 0.2 <= box.middle <= bottom - height * 0.2:
                line.append(box)
                break
        else:
            lines.append([box])
    return lines


def ocr_lines(image: Image.Image) -> list[OcrLine]:
    """The text lines of an image, top to bottom, each with a confidence in [0, 1]."""
    import numpy as np

    result, _ = _engine()(np.asarray(image.convert("RGB")))
    lines = []
    for group in _group(_boxes(result)):
        group.sort(key=lambda b: b.x)
        chars = sum(len(b.text) for b in group)
        confidence = sum(b.score * len(b.text) for b in group) / max(chars, 1)
        lines.append(
            OcrLine(
                " ".join(b.text for b in group),
                round(max(0.0, min(1.0, confidence)), 3),
                min(b.top for b in group),
            )
        )
    lines.sort(key=lambda line: line.top)
    return lines
