"""Datasets: the paper's 20 public datasets, user data folders, synthetic VSR tasks, paper numbers.

    from taskneurons import datasets
    X, y = datasets.load("california", data_dir="../shared/datasets/paper")
    datasets.available("../shared/datasets/paper")     # registered + unknown files found there
    datasets.get_info("california housing").openml_id  # 44025
    X, y = datasets.load_synthetic("epsilon_low_no1")
    datasets.paper_table6()                            # tidy LN/TN reference numbers

Files follow one convention: ``<name>.csv`` / ``.csv.gz`` / ``.parquet`` with a header row and the
target in the last column. See :mod:`taskneurons.datasets.loader` for where files are looked up
and :mod:`taskneurons.datasets.registry` for the registry and how its OpenML ids were checked.
"""

from __future__ import annotations

from .encoding import categorical_columns, encode_features
from .loader import (
    MAX_INFERRED_CLASSES,
    SUFFIXES,
    available,
    cache_dir,
    default_data_dir,
    find_file,
    get_info,
    infer_task,
    load,
    read_table,
    with_shape,
)
from .paper import MODELS, STRUCTURES, paper_table5, paper_table6, resolve_paper_dir
from .registry import (
    REGISTRY,
    TASKS,
    DatasetInfo,
    DatasetShapeWarning,
    canonical_name,
    list_datasets,
    lookup,
    normalize_name,
)
from .synthetic import (
    SYNTHETIC_NAMES,
    SYNTHETIC_NOISE,
    SYNTHETIC_TRUTHS,
    load_synthetic,
    make_synthetic,
    parse_synthetic_name,
    synthetic_clean_target,
    synthetic_dir,
    synthetic_truth,
)

__all__ = [
    # registry
    "REGISTRY",
    "TASKS",
    "DatasetInfo",
    "DatasetShapeWarning",
    "canonical_name",
    "list_datasets",
    "lookup",
    "normalize_name",
    # loading
    "SUFFIXES",
    "MAX_INFERRED_CLASSES",
    "load",
    "available",
    "get_info",
    "find_file",
    "default_data_dir",
    "cache_dir",
    "with_shape",
    "encode_features",
    "read_table",
    "infer_task",
    "categorical_columns",
    # synthetic
    "SYNTHETIC_TRUTHS",
    "SYNTHETIC_NOISE",
    "SYNTHETIC_NAMES",
    "load_synthetic",
    "make_synthetic",
    "parse_synthetic_name",
    "synthetic_truth",
    "synthetic_clean_target",
    "synthetic_dir",
    # paper reference numbers
    "STRUCTURES",
    "MODELS",
    "paper_table5",
    "paper_table6",
    "resolve_paper_dir",
]
