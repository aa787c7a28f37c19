"""Great Expectations suites for every dataset of `mlfund.core.datasets`, and a runner for them.

Expected values (row counts, feature counts, label sets) come from `DataParams`, so a change
of params.yaml moves the expectations with it. great_expectations is imported inside the
functions: importing it costs seconds, and stages that never validate should not pay that.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlfund.core.datasets import TARGET
from mlfund.core.tables import EDUCATION_LEVELS

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

    from mlfund.core.config import DataParams

# scikit-learn's digits ship fixed: 8x8 images with pixel intensities 0..16, ten classes.
DIGITS_FEATURES = 64
DIGITS_ROWS = 1797
DIGITS_MAX_PIXEL = 16
DIGITS_CLASSES = 10

TABULAR = (
    "classification_2d",
    "regression_1d",
    "regression_10d",
    "regression_sparse",
    "blobs",
    "circles",
    "digits",
    "noisy_sine",
    "sine_sequences",
)
DATASETS = (*TABULAR, "salary")
SALARY_COLUMNS = ("age", "income", "education", "experience_years", "date_joined", "salary")

# Pandas dtype names GX compares against (`np.dtype(name).type`); "str" matches both pandas
# string dtypes (`StringDtype.type is str`), whatever storage parquet gives back.
FLOAT_TYPES = ["float64", "float32"]
INT_TYPES = ["int64", "int32"]

# `between` ignores nulls but flags +-inf, so the largest finite float bounds mean "finite".
_FINITE = sys.float_info.max
_DATASOURCE = "mlfund"
# Not "local_site": the ephemeral context already has one of that name, in a temp dir.
_DOCS_SITE = "mlfund_site"


@dataclass(frozen=True)
class DatasetValidation:
    """Outcome of one dataset's suite.

    `failures` has one line per failed expectation naming the dataset, the expectation
    type and its column; `result` is GX's JSON result without run ids and timestamps.
    """

    dataset: str
    success: bool
    failures: list[str]
    result: dict


def expectations_for(dataset: str, data: DataParams) -> list[Expectation]:
    """The expectations of `dataset`, with expected values taken from `data`."""
    if dataset == "salary":
        return _salary_expectations(data)
    if dataset not in TABULAR:
        raise ValueError(f"no expectation suite for dataset {dataset!r}; known: {DATASETS}")
    return _tabular_expectations(dataset, data)


def _tabular_expectations(dataset: str, data: DataParams) -> list[Expectation]:
    import great_expectations.expectations as gxe

    if dataset == "digits":
        n_features, n_rows = DIGITS_FEATURES, DIGITS_ROWS
    else:
        params = getattr(data, dataset)
        # blobs and circles are 2-d points and the sine has one x; the rest say.
        n_features = (
            {"blobs": 2, "circles": 2, "noisy_sine": 1}.get(dataset)
            or getattr(params, "n_features", None)
            or params.seq_length
        )
        n_rows = getattr(params, "n_samples", None) or params.n_sequences
    features = [f"x{i}" for i in range(n_features)]
    columns = [*features, TARGET]
    out: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=columns),
        gxe.ExpectTableRowCountToEqual(value=n_rows),
    ]
    out += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    for c in features:
        if dataset == "digits":  # the 0..16 pixel range rules out inf too: one check fewer
            out += [
                gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=FLOAT_TYPES),
                gxe.ExpectColumnValuesToBeBetween(
                    column=c, min_value=0, max_value=DIGITS_MAX_PIXEL
                ),
            ]
        else:
            out += _finite_float(c)

    labels = {
        "classification_2d": [0, 1],
        "circles": [0, 1],
        "blobs": list(range(data.blobs.centers)),
        "digits": list(range(DIGITS_CLASSES)),
    }.get(dataset)
    if labels is None:  # regression and sine targets are real numbers
        out += _finite_float(TARGET)
    else:
        out += [
            gxe.ExpectColumnValuesToBeInTypeList(column=TARGET, type_list=INT_TYPES),
            gxe.ExpectColumnValuesToBeInSet(column=TARGET, value_set=labels),
        ]

    if dataset == "noisy_sine":  # the generator lays x on an even grid of [0, 1]
        out.append(gxe.ExpectColumnValuesToBeBetween(column="x0", min_value=0, max_value=1))
    return out


def _finite_float(column: str) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=FLOAT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=-_FINITE, max_value=_FINITE),
    ]


def _salary_expectations(data: DataParams) -> list[Expectation]:
    import great_expectations.expectations as gxe

    columns = list(SALARY_COLUMNS)
    return [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=columns),
        gxe.ExpectTableRowCountToEqual(value=data.salary.n_samples),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns),
        # The ranges are those of the generator's randint(18, 80) and randint(0, 40).
        gxe.ExpectColumnValuesToBeInTypeList(column="age", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="age", min_value=18, max_value=79),
        *_finite_float("income"),
        # An income can't be negative; the generator clips its normal draw at income_floor.
        gxe.ExpectColumnValuesToBeBetween(column="income", min_value=0),
        gxe.ExpectColumnValuesToBeOfType(column="education", type_="str"),
        gxe.ExpectColumnValuesToBeInSet(column="education", value_set=list(EDUCATION_LEVELS)),
        gxe.ExpectColumnValuesToBeInTypeList(column="experience_years", type_list=INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="experience_years", min_value=0, max_value=39),
        gxe.ExpectColumnValuesToBeOfType(column="date_joined", type_="datetime64"),
        # One row per day: a repeated date means rows were duplicated.
        gxe.ExpectColumnValuesToBeUnique(column="date_joined"),
        *_finite_float("salary"),
    ]


def validate_datasets(
    frames: dict[str, pd.DataFrame], data: DataParams, docs_dir: Path | None = None
) -> dict[str, DatasetValidation]:
    """Run each frame's suite in one ephemeral GX context; build HTML Data Docs if asked.

    Raises ValueError, before any work, for a frame name that has no suite.
    """
    unknown = sorted(set(frames) - set(DATASETS))
    if unknown:
        raise ValueError(f"no expectation suite for dataset(s) {unknown}; known: {DATASETS}")

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # One context for all datasets: creating one (and its stores) is the slow part.
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # tqdm clutters logs
    source = context.data_sources.add_pandas(_DATASOURCE)
    out: dict[str, DatasetValidation] = {}
    for name, frame in frames.items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(
            gx.ExpectationSuite(name=name, expectations=expectations_for(name, data))
        )
        # A ValidationDefinition (unlike batch.validate) stores its result in the context,
        # which is where build_data_docs reads validation pages from.
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame})
        as_json = result.to_json_dict()  # ~0.1 s a dataset: once
        out[name] = DatasetValidation(
            dataset=name,
            success=bool(result.success),
            failures=_failure_lines(name, as_json),
            result=_deterministic(as_json),
        )

    if docs_dir is not None:
        _build_docs(context, Path(docs_dir))
    return out


def _build_docs(context: AbstractDataContext, docs_dir: Path) -> None:
    # GX resolves a relative base_directory against the context root, which an ephemeral
    # context does not have, so the site gets an absolute path.
    docs_dir = docs_dir.resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        site_name=_DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
        },
    )
    context.build_data_docs(site_names=[_DOCS_SITE])


def _failure_lines(dataset: str, result: dict) -> list[str]:
    lines = []
    for item in result["results"]:
        if item["success"]:
            continue
        config = item["expectation_config"]
        kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        # Long kwargs (a 65-column list, a value set) would drown the line; the column stays.
        shown = ", ".join(
            f"{k}={v!r}" for k, v in kwargs.items() if k == "column" or len(repr(v)) <= 40
        )
        lines.append(f"{dataset}: {config['type']}({shown}): {_detail(item)}")
    return lines


def _detail(item: dict) -> str:
    info = item.get("exception_info") or {}
    # A single exception is a flat dict; several metric errors are keyed by metric id.
    errors = [info] if "raised_exception" in info else list(info.values())
    # dict.fromkeys: the metrics of one missing column all repeat the same message.
    messages = dict.fromkeys(
        str(e["exception_message"]) for e in errors if e.get("raised_exception")
    )
    if messages:
        return "error: " + "; ".join(messages)
    res = item.get("result") or {}
    expected = item["expectation_config"]["kwargs"].get("column_list")
    if expected is not None and isinstance(res.get("observed_value"), list):
        observed = res["observed_value"]
        missing = [c for c in expected if c not in observed]
        extra = [c for c in observed if c not in expected]
        return f"missing columns {missing}, unexpected columns {extra}" + (
            "" if missing or extra else ", wrong order"
        )
    if "unexpected_count" in res:
        count = res["unexpected_count"]
        sample = res.get("partial_unexpected_list", [])[:3]
        return f"{count} unexpected value{'' if count == 1 else 's'} (e.g. {sample})"
    observed = repr(res.get("observed_value"))
    return f"observed {observed if len(observed) <= 120 else observed[:117] + '...'}"


def _deterministic(result: dict) -> dict:
    """Drop what changes run to run (ids, clock times, tracebacks with local paths)."""
    result.pop("id", None)
    meta = result.get("meta", {})
    for key in ("run_id", "validation_time", "validation_id", "checkpoint_id"):
        meta.pop(key, None)
    meta.get("batch_markers", {}).pop("ge_load_time", None)
    for item in result["results"]:
        item["expectation_config"].pop("id", None)  # a fresh uuid per expectation object
        info = item.get("exception_info") or {}
        for error in [info] if "raised_exception" in info else info.values():
            error.pop("exception_traceback", None)
    return result
