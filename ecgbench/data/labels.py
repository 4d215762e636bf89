"""Source labels -> multi-hot class rows, by the manifest's map (SNOMED-CT codes, PTB-XL superclasses, PTB's
reasons for admission, CODE-test's columns); equivalent codes are simply listed under the same class.

A label neither mapped nor ignored is *unknown*: the manifest decides whether that is an error or a skipped
record, so a new code in a new release is never silently read as "no class".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ecgbench.data.manifest import Labels


@dataclass(frozen=True)
class LabelRow:
    row: np.ndarray  # uint8 [n_classes]
    unknown: tuple[str, ...]  # source labels the manifest does not know


class LabelMap:
    def __init__(self, classes: tuple[str, ...], spec: Labels) -> None:
        self.classes = classes
        self.spec = spec
        self._class_of: dict[str, list[int]] = {}
        for name, sources in spec.map.items():
            for source in sources:
                self._class_of.setdefault(source, []).append(classes.index(name))
        self._ignored = set(spec.ignore)

    def __call__(self, source_labels: Iterable[str]) -> LabelRow:
        row = np.zeros(len(self.classes), dtype=np.uint8)
        unknown = []
        for label in source_labels:
            label = label.strip()
            if label in self._class_of:
                row[self._class_of[label]] = 1
            elif label not in self._ignored:
                unknown.append(label)
        if self.spec.none_class and not row.any():
            row[self.classes.index(self.spec.none_class)] = 1
        return LabelRow(row, tuple(unknown))
