"""Shared pieces of the bandit benchmarks: data sets, machine description, tables."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Sequence

import numpy as np

DATASETS = ("iris", "wine", "breast_cancer", "digits")


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A bundled scikit-learn data set, standardised, with a constant column appended."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    loader = getattr(datasets, f"load_{name}")
    features, labels = loader(return_X_y=True)
    scaled = StandardScaler().fit_transform(features)
    return np.hstack([scaled, np.ones((scaled.shape[0], 1))]), labels.astype(np.int64)


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_description(packages: Sequence[str]) -> str:
    """Platform, CPU, Python and package versions, one line each."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [
        f"platform: {platform.platform()}",
        f"cpu: {cpu} ({os.cpu_count()} logical CPUs)",
        f"python: {sys.version.split()[0]}",
        "packages: " + ", ".join(f"{p} {version(p)}" for p in packages),
    ]
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
