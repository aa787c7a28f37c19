"""Typed, validated view of params.yaml.

Every section of params.yaml has one pydantic model here. Models forbid unknown keys
and infinite or NaN floats, so a typo fails before any work is done, and `load_params`
reports every problem with its full key path (for example `regularization.cv_folds: Input
should be ...`). Checks that need the machine or the library's own facts (devices, memory,
files) are in `mlfund.preflight`.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlfund.core.errors import ParamsError

Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


class Section(BaseModel):
    # allow_inf_nan=False: every float of every section, in lists and tuples too, is finite
    # (`noise: .inf` would otherwise pass `ge=0` and fail deep inside a maker)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LogSpace(Section):
    """`num` values evenly spaced on a log10 scale from 10**start to 10**stop."""

    start: float
    stop: float
    num: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _increasing(self) -> LogSpace:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self


# ---------------------------------------------------------------- data (generate)
class Classification2D(Section):
    n_samples: Annotated[int, Field(ge=20)]
    n_features: Annotated[int, Field(ge=2)]
    n_informative: PositiveInt
    n_redundant: Annotated[int, Field(ge=0)]
    n_clusters_per_class: PositiveInt
    seed: Seed

    @model_validator(mode="after")
    def _fits_in_features(self) -> Classification2D:
        if self.n_informative + self.n_redundant > self.n_features:
            raise ValueError(
                f"n_informative + n_redundant ({self.n_informative} + {self.n_redundant}) "
                f"exceeds n_features ({self.n_features})"
            )
        if 2 * self.n_clusters_per_class > 2**self.n_informative:
            raise ValueError(
                "2 classes x n_clusters_per_class must be <= 2**n_informative "
                f"(got {2 * self.n_clusters_per_class} > {2**self.n_informative})"
            )
        return self


class Regression(Section):
    n_samples: Annotated[int, Field(ge=20)]
    n_features: PositiveInt
    n_informative: PositiveInt | None = None
    noise: Annotated[float, Field(ge=0.0)]
    seed: Seed

    @model_validator(mode="after")
    def _informative_fits(self) -> Regression:
        if self.n_informative is not None and self.n_informative > self.n_features:
            raise ValueError(
                f"n_informative ({self.n_informative}) exceeds n_features ({self.n_features})"
            )
        return self


class Blobs(Section):
    n_samples: Annotated[int, Field(ge=10)]
    centers: Annotated[int, Field(ge=2)]
    cluster_std: PositiveFloat
    seed: Seed


class Circles(Section):
    """make_circles: an inner circle (class 1) inside an outer one (class 0)."""

    n_samples: Annotated[int, Field(ge=20)]
    factor: Annotated[float, Field(gt=0.0, lt=1.0)]  # inner radius / outer radius
    noise: Annotated[float, Field(ge=0.0)]
    seed: Seed


class NoisySine(Section):
    n_samples: Annotated[int, Field(ge=20)]
    slope: float
    frequency: PositiveFloat
    noise_std: Annotated[float, Field(ge=0.0)]
    seed: Seed


class SineSequences(Section):
    """Noisy sine waves of random frequency, amplitude and phase; predict the next value."""

    n_sequences: Annotated[int, Field(ge=20)]
    seq_length: Annotated[int, Field(ge=2)]
    noise_std: Annotated[float, Field(ge=0.0)]
    seed: Seed


# The dates pandas can hold (nanosecond timestamps): pandas.Timestamp.min and .max, by day.
FIRST_DATE, LAST_DATE = dt.date(1677, 9, 22), dt.date(2262, 4, 11)


class Salary(Section):
    n_samples: Annotated[int, Field(ge=20)]
    start_date: dt.date
    income_floor: Annotated[float, Field(ge=0.0)]
    seed: Seed

    @model_validator(mode="after")
    def _dates_fit_pandas(self) -> Salary:
        # one row per day from start_date: the last one must still be a pandas timestamp
        if self.start_date < FIRST_DATE or (LAST_DATE - self.start_date).days < self.n_samples - 1:
            raise ValueError(
                f"n_samples ({self.n_samples}) days from start_date ({self.start_date}) must "
                f"stay within {FIRST_DATE}..{LAST_DATE}, the dates pandas can hold"
            )
        return self


class DataParams(Section):
    classification_2d: Classification2D
    regression_1d: Regression
    regression_10d: Regression
    regression_sparse: Regression
    blobs: Blobs
    circles: Circles
    noisy_sine: NoisySine
    sine_sequences: SineSequences
    salary: Salary
    # The memory one dataset may take while generate makes it, in GB (10**9 bytes); None:
    # this machine's RAM. check_params stops a dataset estimated to need more.
    memory_limit_gb: PositiveFloat | None = None


# ---------------------------------------------------------------- featurize
class FeaturizeParams(Section):
    reference_date: dt.date
    age_bins: list[float] = Field(min_length=3)
    age_labels: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _bins_match_labels(self) -> FeaturizeParams:
        if len(self.age_labels) != len(self.age_bins) - 1:
            raise ValueError(
                f"age_labels has {len(self.age_labels)} names but age_bins defines "
                f"{len(self.age_bins) - 1} bins"
            )
        if any(hi <= lo for lo, hi in zip(self.age_bins, self.age_bins[1:], strict=False)):
            raise ValueError(f"age_bins must increase strictly, got {self.age_bins}")
        return self


# ---------------------------------------------------------------- split
class SplitSpec(Section):
    """Fractions of the whole dataset; `shuffle: false` keeps row order (test = last rows)."""

    test_size: Annotated[float, Field(gt=0.0, lt=1.0)]  # evaluate scores on these rows
    val_size: Fraction
    shuffle: bool
    stratify: bool
    seed: Seed

    @model_validator(mode="after")
    def _room_for_training(self) -> SplitSpec:
        if self.test_size + self.val_size >= 0.9:
            raise ValueError(
                f"test_size + val_size = {self.test_size + self.val_size:g} leaves under 10% "
                "of the rows for training"
            )
        if self.stratify and not self.shuffle:
            raise ValueError("stratify: true needs shuffle: true")
        return self


class SplitParams(Section):
    classification_2d: SplitSpec
    regression_1d: SplitSpec
    regression_10d: SplitSpec
    regression_sparse: SplitSpec
    circles: SplitSpec
    digits: SplitSpec
    noisy_sine: SplitSpec
    sine_sequences: SplitSpec
    salary: SplitSpec


# ---------------------------------------------------------------- families
class LinearParams(Section):
    logistic_c: PositiveFloat
    poly_degree: Annotated[int, Field(ge=1, le=10)]
    boundary_grid_step: PositiveFloat


class RegularizationParams(Section):
    ridge_alphas: LogSpace
    cv_folds: Annotated[int, Field(ge=2, le=20)]
    learning_curve_points: Annotated[int, Field(ge=2, le=50)]
    degrees: list[Annotated[int, Field(ge=1, le=25)]] = Field(min_length=1)
    ridge_degree: Annotated[int, Field(ge=1, le=25)]
    ridge_strengths: list[Annotated[float, Field(ge=0.0)]] = Field(min_length=1)
    path_alphas: LogSpace
    lasso_alpha: PositiveFloat
    lasso_max_iter: PositiveInt
    selection_threshold: Annotated[float, Field(ge=0.0)]


class ClusteringParams(Section):
    n_clusters: Annotated[int, Field(ge=2)]
    kmeans_n_init: PositiveInt | Literal["auto"]
    dbscan_eps: PositiveFloat
    dbscan_min_samples: PositiveInt
    linkage: Literal["ward", "complete", "average", "single"]
    seed: Seed


class EmbeddingParams(Section):
    n_variance_components: Annotated[int, Field(ge=2, le=64)]
    tsne_perplexity: Annotated[float, Field(ge=2.0, le=100.0)]
    tsne_max_iter: Annotated[int, Field(ge=250)]
    seed: Seed


class FeaturesParams(Section):
    k_best: PositiveInt
    rfe_n_features: PositiveInt
    forest_n_estimators: PositiveInt
    seed: Seed


class BackpropParams(Section):
    init_scale: PositiveFloat
    learning_rate: PositiveFloat
    epochs: PositiveInt
    gradient_check_tolerance: PositiveFloat


class NumpyMlpParams(Section):
    hidden_layer_sizes: list[PositiveInt] = Field(min_length=1)
    activation: Literal["relu", "sigmoid", "tanh"]
    learning_rate: PositiveFloat
    epochs: PositiveInt
    batch_size: PositiveInt | None


class OptimizerStudyParams(Section):
    learning_rate: PositiveFloat
    beta: Annotated[float, Field(ge=0.0, lt=1.0)]
    epochs: PositiveInt
    n_samples: Annotated[int, Field(ge=10)]
    agreement_steps: PositiveInt


class BatchVariantsParams(Section):
    n_samples: Annotated[int, Field(ge=10)]
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    epochs: PositiveInt


class GeometryParams(Section):
    start: tuple[float, float]
    learning_rates: list[PositiveFloat] = Field(min_length=1)
    max_steps: PositiveInt
    grad_tol: PositiveFloat
    divergence_factor: Annotated[float, Field(gt=1.0)]


class SoftmaxParams(Section):
    learning_rate: PositiveFloat
    epochs: PositiveInt
    l2: Annotated[float, Field(ge=0.0)]
    perceptron_epochs: PositiveInt


class VanishingParams(Section):
    depth: Annotated[int, Field(ge=2, le=100)]
    width: Annotated[int, Field(ge=2)]
    n_samples: Annotated[int, Field(ge=2)]


class NumpyNNParams(Section):
    seed: Seed
    backprop: BackpropParams
    mlp: NumpyMlpParams
    optimizers: OptimizerStudyParams
    batch_variants: BatchVariantsParams
    geometry: GeometryParams
    softmax: SoftmaxParams
    vanishing: VanishingParams


# ---------------------------------------------------------------- PyTorch families
Device = Literal["auto", "cpu", "cuda", "mps"]


class DistributedParams(Section):
    """Data-parallel training (PyTorch DDP under torchrun) of the families that support it
    (`mlfund.deep.distributed`); the defaults train in the stage's own process."""

    nproc_per_node: PositiveInt = 1  # processes on this machine; on cuda one per GPU
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on cuda, gloo on cpu
    # a rank that does not join, or stops answering inside a collective, fails the run then
    timeout_seconds: Annotated[int, Field(ge=1)] = 300


class ComputeParams(Section):
    device: Device  # auto: cuda, then mps, then cpu
    precision: Literal["fp32", "bf16", "fp16"]  # autocast dtype on GPU; CPU always fp32
    threads: Annotated[int, Field(ge=0)]  # torch intra-op threads; 0 keeps torch's default
    distributed: DistributedParams = DistributedParams()

    @model_validator(mode="after")
    def _nccl_needs_cuda(self) -> ComputeParams:
        """What the schema alone can tell; a family's own device and the GPUs this
        machine has are checked by `mlfund.preflight`."""
        if self.distributed.backend == "nccl" and self.device in ("cpu", "mps"):
            raise ValueError(
                f"compute.distributed.backend is nccl but compute.device is {self.device}: "
                "NCCL runs on CUDA GPUs only; use backend auto or gloo"
            )
        return self


class TorchFamilyParams(Section):
    """What every PyTorch family may override of `compute`."""

    device: Device | None = None  # overrides compute.device
    threads: Annotated[int, Field(ge=0)] | None = None  # overrides compute.threads


class TorchMlpParams(TorchFamilyParams):
    hidden_sizes: list[PositiveInt] = Field(min_length=1)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    epochs: PositiveInt
    seed: Seed


URL_SCHEMES = ("http", "https", "file")


class CnnParams(TorchFamilyParams):
    dataset: Literal["digits", "cifar10"]
    cifar10_url: str  # mirror of cifar-10-python.tar.gz: http(s)://host/... or file:///path
    cifar10_md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    image_size: Annotated[int, Field(ge=8, le=64)]  # digits are padded/upsampled to this
    channels: list[PositiveInt] = Field(min_length=1)
    fc_size: PositiveInt
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    augment: bool
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    epochs: PositiveInt
    patience: PositiveInt  # early stopping on validation loss
    seed: Seed

    @field_validator("cifar10_url")
    @classmethod
    def _url_form(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        try:
            parts.port  # noqa: B018 (parsing the port is the check: "host:http" raises)
        except ValueError:
            raise ValueError("has an invalid port") from None
        remote = parts.scheme in ("http", "https")
        if parts.scheme not in URL_SCHEMES or (remote and not parts.hostname):
            raise ValueError("must be an http(s)://host/... URL or a file:///absolute/path")
        if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
            raise ValueError("a file: URL must be file:///absolute/path (no host)")
        return url


class RnnParams(TorchFamilyParams):
    hidden_size: PositiveInt
    num_layers: PositiveInt
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    epochs: PositiveInt
    patience: PositiveInt
    seed: Seed


class TransformerParams(TorchFamilyParams):
    dataset: Literal["synthetic", "20newsgroups"]
    n_samples: Annotated[int, Field(ge=100)]  # synthetic corpus size
    max_length: Annotated[int, Field(ge=4)]  # tokens per text (padded / truncated)
    min_word_count: PositiveInt  # rarer training words map to the unknown token
    d_model: PositiveInt
    n_heads: PositiveInt
    n_layers: PositiveInt
    d_ff: PositiveInt
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    epochs: PositiveInt
    patience: PositiveInt
    seed: Seed

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerParams:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        return self


class GenerativeParams(TorchFamilyParams):
    n_samples: Annotated[int, Field(ge=100)]  # points of the two 2-D Gaussian clusters
    latent_dim: PositiveInt
    hidden_size: PositiveInt
    vae_epochs: PositiveInt
    gan_epochs: PositiveInt
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    n_generated: Annotated[int, Field(ge=100)]  # samples drawn to measure quality
    seed: Seed


class TargetShift(Section):
    """The target task's domain: every target image distorted, seeded (transfer.domain)."""

    rotation: Annotated[float, Field(ge=0.0, le=180.0)]  # at most this many degrees either way
    elastic: Annotated[float, Field(ge=0.0, le=4.0)]  # warp std in pixels of the 8x8 digit
    noise: Annotated[float, Field(ge=0.0, le=1.0)]  # pixel noise std, share of the pixel range


class TransferParams(TorchFamilyParams):
    backbone: Literal["pipeline_cnn", "resnet18_imagenet"]
    resnet18_weights: str | None = None  # path to resnet18 weights; None: the torch cache
    source_classes: list[Annotated[int, Field(ge=0, le=9)]] = Field(min_length=2)
    target_classes: list[Annotated[int, Field(ge=0, le=9)]] = Field(min_length=2)
    labels_per_class: PositiveInt  # labelled target images per class ("few labels")
    target_shift: TargetShift
    # seeds of the best strategy vs from scratch comparison: seed, seed + 1, ...
    compare_seeds: Annotated[int, Field(ge=1, le=20)]
    source_epochs: PositiveInt  # pretraining on the source task
    source_batch_size: PositiveInt
    epochs: PositiveInt  # fine-tuning on the target task
    patience: PositiveInt  # target epochs without a better validation loss before stopping
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    seed: Seed

    @field_validator("source_classes", "target_classes")
    @classmethod
    def _distinct(cls, classes: list[int]) -> list[int]:
        if len(set(classes)) != len(classes):
            raise ValueError(f"a digit is listed twice in {classes}")
        return classes


class TrackingParams(Section):
    """How the stages that log to MLflow (train_*, evaluate) treat the tracking store."""

    # fail: a tracking server that does not answer stops the stage at once, naming the URI.
    # warn: log a warning and train without MLflow; metrics still land in the DVC files.
    on_unreachable: Literal["fail", "warn"]


class Params(Section):
    tracking: TrackingParams
    data: DataParams
    featurize: FeaturizeParams
    split: SplitParams
    linear: LinearParams
    regularization: RegularizationParams
    clustering: ClusteringParams
    embedding: EmbeddingParams
    features: FeaturesParams
    numpy_nn: NumpyNNParams
    compute: ComputeParams
    mlp: TorchMlpParams
    cnn: CnnParams
    rnn: RnnParams
    transformer: TransformerParams
    generative: GenerativeParams
    transfer: TransferParams

    def device_of(self, family: str) -> tuple[str, str]:
        """(requested device, the params key it comes from) of a PyTorch family: its own
        `<family>.device` when set, else `compute.device`."""
        own = getattr(self, family).device
        return (own, f"{family}.device") if own else (self.compute.device, "compute.device")


def error_lines(error: ValidationError, unknown_key: str = "unknown key (typo?)") -> list[str]:
    """One `key.path: what is wrong (got value)` line per error of a pydantic validation:
    the wording of every schema error the project reports (params.yaml, gate.yaml).

    An error of a whole model (a model validator's, or input that is no mapping at all)
    has no key path and reads `what is wrong (got value)`.
    """
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        detail = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            detail = unknown_key
        elif item["type"] != "missing" and "input" in item:
            detail += f" (got {item['input']!r})"
        lines.append(f"{path}: {detail}" if path else detail)
    return lines


def _format_errors(error: ValidationError, source: str) -> str:
    lines = error_lines(error)
    return "\n".join([f"{source}: {len(lines)} invalid parameter(s)", *(f"  {x}" for x in lines)])


def parse_params(raw: object, source: str = "params") -> Params:
    """Validate an already-loaded params mapping."""
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_format_errors(error, source)) from None


_MISSING = object()


def lookup(raw: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key (`cnn.seed`) of parsed params.yaml; `default` where the
    path does not exist."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def has_key(raw: Mapping[str, Any], key: str) -> bool:
    """Whether the dotted key exists in parsed params.yaml (its value may be null)."""
    return lookup(raw, key, _MISSING) is not _MISSING


def load_params(path: str | Path) -> Params:
    """Read and validate params.yaml; raises ParamsError naming every bad key path."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, source=str(path))
