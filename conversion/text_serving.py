"""Text in: a Hugging Face `tokenizer.json` served in Triton in front of a text model.

For a model `<model>` taking `input_ids` and `attention_mask` (INT64 [batch, sequence]) this
writes `<model>_tokenizer` (python backend, `conversion/tokenizer_model.py`: BYTES `text` [1] ->
the two INT64 tensors, padded to length buckets) and, per served ONNX variant `<served>`, an
ensemble `<served>_text`: BYTES `text` [1] -> every output of `<served>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conversion import tokenizer_model
from conversion.repository import combined_fingerprint, write_configs
from conversion.spec import SpecError
from conversion.triton_config import Batching, EnsembleStep, ModelConfigSpec, Tensor, read_config

TOKEN_INPUTS = ("input_ids", "attention_mask")


@dataclass(frozen=True)
class TextServing:
    """The tokenizer to serve: a tokenizer.json, its length buckets and its padding id."""

    tokenizer_file: Path
    buckets: tuple[int, ...] = tokenizer_model.BUCKETS
    pad_id: int = 0

    @classmethod
    def for_tokenizer(cls, path: Path, max_length: int | None = None) -> TextServing:
        """Buckets up to `max_length` (the model's position limit), padding id from the file."""
        buckets = tokenizer_model.BUCKETS
        if max_length is not None and max_length < buckets[-1]:
            buckets = (*(b for b in buckets if b < max_length), max_length)
        return cls(path, buckets, padding_id(path))


def padding_id(path: Path) -> int:
    """The id a tokenizer pads with: its padding setting, else [PAD]/<pad>, else 0."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    if tokenizer.padding:
        return int(tokenizer.padding["pad_id"])
    ids = (tokenizer.token_to_id(t) for t in ("[PAD]", "<pad>", "<|pad|>", "<unk>"))
    return next((i for i in ids if i is not None), 0)


def _tokenizer_spec(name: str, text: TextServing, stamp: str) -> ModelConfigSpec:
    return ModelConfigSpec(
        name=name,
        platform="",
        backend="python",
        inputs=(Tensor("text", "object", (1,)),),
        outputs=tuple(Tensor(n, "int64", (-1,)) for n in TOKEN_INPUTS),
        max_batch_size=64,
        batching=Batching(max_queue_delay_us=1000, queue_timeout_us=1_000_000, max_queue_size=1024),
        instance_count=2,  # one instance behind a queue policy stalls now and then (Triton 2.51)
        fingerprint=stamp,
        parameters={
            "buckets": ",".join(map(str, text.buckets)),
            "pad_id": str(text.pad_id),
            "max_chars": str(tokenizer_model.max_chars(text.buckets)),
        },
    )


def write_tokenizer(repository: Path, name: str, text: TextServing) -> str:
    """`<repo>/<name>/1/{model.py, fingerprint.py, tokenizer.json}` and its configs; returns its
    fingerprint (every file of the version: `conversion.fingerprint`)."""
    stamp = tokenizer_model.write_version(repository / name / "1", text.tokenizer_file)
    spec = _tokenizer_spec(name, text, stamp)
    write_configs(repository / name, spec, spec)  # the tokenizer runs on the CPU in both configs
    return stamp


def _ensemble(
    served: str, tokenizer: str, tokenizer_print: str, repository: Path
) -> ModelConfigSpec:
    config = read_config(repository / served / "config.pbtxt")
    inputs = sorted(i.name for i in config.input)
    if inputs != sorted(TOKEN_INPUTS):
        raise SpecError(
            f"'{served}' takes {inputs}: a model behind the tokenizer takes {list(TOKEN_INPUTS)}"
        )
    outputs = tuple(Tensor.from_proto(o) for o in config.output)
    internal = {n: f"_{n}" for n in TOKEN_INPUTS}
    return ModelConfigSpec(
        name=f"{served}_text",
        platform="ensemble",
        inputs=(Tensor("text", "object", (1,)),),
        outputs=outputs,
        max_batch_size=config.max_batch_size,
        batching=None,
        fingerprint=combined_fingerprint(
            tokenizer_print, config.parameters["fingerprint"].string_value
        ),
        ensemble_steps=(
            EnsembleStep(tokenizer, {"text": "text"}, internal),
            EnsembleStep(served, internal, {o.name: o.name for o in outputs}),
        ),
    )


def write_text_models(
    repository: Path, model: str, served: list[str], text: TextServing
) -> list[str]:
    """The tokenizer `<model>_tokenizer` and one `<served>_text` ensemble per served variant.

    Raises SpecError when a served variant does not take input_ids and attention_mask.
    Returns the names written.
    """
    tokenizer = f"{model}_tokenizer"
    stamp = write_tokenizer(repository, tokenizer, text)
    written = [tokenizer]
    for name in served:
        ensemble = _ensemble(name, tokenizer, stamp, repository)
        write_configs(repository / ensemble.name, ensemble, ensemble)
        (repository / ensemble.name / "1").mkdir(exist_ok=True)  # Triton wants a version folder
        written.append(ensemble.name)
    return written
