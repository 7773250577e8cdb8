"""The conformance cases of both front ends, written once: what the Python gateway (HTTP) and
gateway-grpc (gRPC) answer to each request, which cache key and value they store, and how both
read their settings. `python -m tests.conformance.corpus` writes them to corpus.json, which the
Python tests and the Go tests read (see tests/conformance/corpus.py for the format).

Each case names the rule it pins: the README ("The gateway", "Failure behaviour"), Triton 2.51's
own answers (measured against the tritonserver of the local stack: the messages quoted as
Triton's are its own), or the KServe v2 protocol. Where the two front ends must differ (a
protocol's own parameters), the case says so with `http_message`/`grpc_message` or `forms`.
"""

from __future__ import annotations

import struct

from gateway.settings import Settings
from tests.conformance.corpus import Answer, Case, Expect, Input, Model

FLOATS = ("FP16", "BF16", "FP32", "FP64")
BINARY_ONLY = ("FP16", "BF16")
DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
DATATYPES += (*FLOATS, "BYTES")
IMAGE_VALUES = tuple(i * 0.25 for i in range(64))

# The demo models as the local stack's Triton describes them (fingerprints are the corpus's own).
DIGITS = Model(
    "digits",
    inputs=(("image", "FP32", (-1, 1, 8, 8)),),
    outputs=(("logits", "FP32", (-1, 10)),),
    parameters=(("intra_op_thread_count", "1"),),
)
TOKENS = (("input_ids", "INT64", (-1, -1)), ("attention_mask", "INT64", (-1, -1)))
EMBEDDING = (("embedding", "FP32", (-1, 384)),)
MINILM = Model(
    "minilm",
    TOKENS,
    EMBEDDING,
    parameters=(
        ("valid_range:input_ids", "0,30521"),
        ("max_length:input_ids", "512"),
        ("max_length:attention_mask", "512"),
        ("shared_axis:sequence", "input_ids:1,attention_mask:1"),
    ),
)
TOKENIZER = Model("minilm_tokenizer", (("text", "BYTES", (-1, 1)),), TOKENS)
TEXT = Model(
    "minilm_text",
    (("text", "BYTES", (-1, 1)),),
    EMBEDDING,
    steps=("minilm_tokenizer", "minilm"),
    resolves_to="fingerprint-minilm_text|minilm_tokenizer=fingerprint-minilm_tokenizer"
    "|minilm=fingerprint-minilm",
)
# Models for one rule each.
PAIR = Model(
    "pair",
    (("x", "FP32", (-1, 2)),),
    (("sum", "FP32", (-1, 1)), ("product", "FP32", (-1, 1))),
    max_batch_size=4,
)
FIXED = Model("fixed", (("x", "FP32", (2,)),), (("y", "FP32", (2,)),), max_batch_size=0)
SCALAR = Model("scalar_on_batching", (("x", "FP32", ()),), (("y", "FP32", ()),))
ALLOW_EMPTY = Model(
    "minilm_allow_empty",
    TOKENS,
    EMBEDDING,
    parameters=(("allow_empty:input_ids", "true"), ("allow_empty:attention_mask", " TRUE ")),
)
MARKUP = Model("markup_names", (("x", "FP32", (-1, 1)),), (("p<&>q", "FP32", (-1, 1)),))
ZERO_AXIS = Model("zero_axis", (("x", "INT64", (-1, 0)),), (("y", "FP32", (-1, 1)),))
HANDWRITTEN = Model("handwritten", DIGITS.inputs, DIGITS.outputs, fingerprint="")
TOKENIZER_HANDWRITTEN = Model("tokenizer_handwritten", TOKENIZER.inputs, TOKENS, fingerprint="")
TEXT_HANDWRITTEN_STEP = Model(
    "text_with_handwritten_step",
    TEXT.inputs,
    EMBEDDING,
    steps=("tokenizer_handwritten", "minilm"),
    resolves_to="",
)

# Models cached per row (docs/cache.md): batching dynamically, or by their row_cache parameter.
ROWS = Model(
    "rows",
    (("x", "FP32", (-1, 2)),),
    (("y", "FP32", (-1, 1)), ("z", "FP32", (-1, 1))),
    dynamic_batching=True,
)
ROWS_TOKENIZER = Model("rows_tokenizer", TOKENIZER.inputs, TOKENS, dynamic_batching=True)
ROWS_ENCODER = Model(
    "rows_encoder", TOKENS, (("embedding", "FP32", (-1, 4)),), dynamic_batching=True
)
ROWS_TEXT = Model(
    "rows_text",
    TEXT.inputs,
    (("embedding", "FP32", (-1, 4)),),
    steps=("rows_tokenizer", "rows_encoder"),
    resolves_to="fingerprint-rows_text|rows_tokenizer=fingerprint-rows_tokenizer"
    "|rows_encoder=fingerprint-rows_encoder",
)
ROWS_OFF = Model(
    "rows_switched_off",
    ROWS.inputs,
    ROWS.outputs,
    parameters=(("row_cache", "false"),),
    dynamic_batching=True,
)
ROWS_ON = Model(
    "rows_switched_on", ROWS.inputs, ROWS.outputs, parameters=(("row_cache", " True "),)
)
ROWS_VARIABLE = Model(
    "rows_variable_output", ROWS.inputs, (("y", "FP32", (-1, -1)),), dynamic_batching=True
)
ROWS_BAD_SWITCH = Model(
    "rows_bad_switch", ROWS.inputs, ROWS.outputs, parameters=(("row_cache", "yes"),)
)
ROW_MODELS = (
    ROWS,
    ROWS_TOKENIZER,
    ROWS_ENCODER,
    ROWS_TEXT,
    ROWS_OFF,
    ROWS_ON,
    ROWS_VARIABLE,
    ROWS_BAD_SWITCH,
)


def echo(datatype: str) -> Model:
    return Model(
        f"echo_{datatype.lower()}", (("x", datatype, (-1, 2)),), (("y", datatype, (-1, 2)),)
    )


def ids_model(datatype: str) -> Model:
    return Model(
        f"ids_{datatype.lower()}",
        (("x", datatype, (-1, -1)),),
        (("y", "FP32", (-1, 1)),),
        parameters=(("valid_range:x", "0,100"),),
    )


MALFORMED_RANGES = (
    ("range_not_two_integers", "0-9"),
    ("range_of_three", "1,2,3"),
    ("range_empty", ""),
    ("range_of_words", "a,b"),
    ("range_reversed", "9,0"),
    ("range_beyond_int64", "0,99999999999999999999"),
)


def range_model(name: str, value: str) -> Model:
    return Model(
        name,
        (("x", "INT64", (-1, 1)),),
        (("y", "FP32", (-1, 1)),),
        parameters=(("valid_range:x", value),),
    )


MALFORMED_LENGTHS = (
    ("length_empty", ""),
    ("length_of_words", "abc"),
    ("length_zero", "0"),
    ("length_negative", "-1"),
    ("length_fraction", "1.5"),
    ("length_of_two", "1,2"),
    ("length_with_underscore", "1_000"),
    ("length_beyond_int64", "99999999999999999999"),
)


MALFORMED_SHARED_AXES = (
    ("shared_one_member", "x:1"),
    ("shared_empty", ""),
    ("shared_no_axis", "x,z"),
    ("shared_negative_axis", "x:-1,z:1"),
    ("shared_axis_of_words", "x:one,z:1"),
    ("shared_nameless", ":1,z:1"),
    ("shared_beyond_int64", "x:1,z:99999999999999999999"),
)


def shared_model(name: str, value: str) -> Model:
    """Two inputs of shape [batch, -1] that a `shared_axis:length` parameter may tie."""
    return Model(
        name,
        (("x", "INT64", (-1, -1)), ("z", "INT64", (-1, -1))),
        (("y", "FP32", (-1, 1)),),
        parameters=(("shared_axis:length", value),),
    )


def length_model(name: str, value: str) -> Model:
    return Model(
        name,
        (("x", "INT64", (-1, -1)),),
        (("y", "FP32", (-1, 1)),),
        parameters=(("max_length:x", value),),
    )


MODELS = (
    DIGITS,
    MINILM,
    TOKENIZER,
    TEXT,
    PAIR,
    FIXED,
    SCALAR,
    ALLOW_EMPTY,
    ZERO_AXIS,
    MARKUP,
    HANDWRITTEN,
    TOKENIZER_HANDWRITTEN,
    TEXT_HANDWRITTEN_STEP,
    *(echo(datatype) for datatype in DATATYPES),
    *(ids_model(datatype) for datatype in ("INT8", "INT32", "UINT64")),
    *(range_model(name, value) for name, value in MALFORMED_RANGES),
    range_model("range_with_spaces", " 0 , 9 "),
    *(length_model(name, value) for name, value in MALFORMED_LENGTHS),
    length_model("length_with_spaces", " 2 "),
    *(shared_model(name, value) for name, value in MALFORMED_SHARED_AXES),
    shared_model("shared_with_spaces", " x : 1 , z:+1 "),
    shared_model("shared_beyond_rank", "x:1,z:2"),
    shared_model("shared_unknown_input", "x:1,w:1"),
    *ROW_MODELS,
)


def image(values=IMAGE_VALUES, shape=(1, 1, 8, 8), **changes) -> Input:
    return Input(
        changes.pop("name", "image"), changes.pop("datatype", "FP32"), shape, values, **changes
    )


def tokens(ids: list[int], mask_first: bool = False, datatype: str = "INT64") -> tuple[Input, ...]:
    shape = (1, len(ids))
    pair = (
        Input("input_ids", datatype, shape, tuple(ids)),
        Input("attention_mask", datatype, shape, (1,) * len(ids)),
    )
    return pair[::-1] if mask_first else pair


def x(datatype: str, values: tuple, shape: tuple[int, ...] = (1, 2), **changes) -> Input:
    return Input("x", datatype, shape, values, **changes)


def refused(message: str, status: int = 400, **changes) -> Expect:
    code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 500: "INTERNAL"}[status]
    return Expect(status=status, code=code, message=message, reaches_triton=False, **changes)


def failed(status: int, code: str, message: str, **changes) -> Expect:
    """An answer Triton's error turns into (it was reached)."""
    return Expect(status=status, code=code, message=message, **changes)


README = "README, The gateway"
FAILURES = "README, Failure behaviour"
KEY = "README, Cache key"
TRITON = "Triton 2.51 (measured)"
KSERVE = "KServe v2 protocol"
MORE = "more than the 32 supported"


def shapes_and_names() -> list[Case]:
    """Names, missing and unknown inputs and outputs, datatypes, shapes and batch bounds."""
    return [
        Case("an image in every form has one key", KEY, "digits", (image(),)),
        Case(
            "version 1 named explicitly shares the latest version's key",
            KEY,
            "digits",
            (image(),),
            version="1",
            forms=("v2 JSON", "/predict", "raw"),
            same_key_as="an image in every form has one key",
        ),
        Case(
            "an unknown model is Triton's 404",
            TRITON,
            "nope",
            (image(),),
            refused("Request for unknown model: 'nope' is not found", 404),
            forms=("v2 JSON", "v2 binary", "/predict", "raw"),
        ),
        Case(
            "an unknown model is a 404 before its malformed tensor is read (Triton's order)",
            TRITON,
            "nope",
            (image(values=(1.0,), raw=b"\0" * 4),),
            refused("Request for unknown model: 'nope' is not found", 404),
            forms=("v2 binary", "raw"),
        ),
        Case(
            "an unknown version is Triton's 404",
            TRITON,
            "digits",
            (image(),),
            refused("Request for unknown model: 'digits' version 9 is not found", 404),
            version="9",
            forms=("v2 JSON", "/predict", "raw"),
        ),
        Case(
            "a NUL in a model name is an unknown model, not the model named before it",
            TRITON,
            "digits\0x",
            (image(),),
            refused("Request for unknown model: 'digits\0x' is not found", 404),
            forms=("v2 JSON", "v2 binary", "/predict", "raw"),
        ),
        Case(
            "a version with leading zeros is the version Triton answers, under its key",
            TRITON,
            "digits",
            (image(),),
            version="01",
            forms=("v2 JSON", "/predict", "raw"),
            same_key_as="an image in every form has one key",
        ),
        Case(
            "a version that is not decimal digits is refused in Triton's words",
            TRITON,
            "digits",
            (image(),),
            refused(
                "invalid model version specified '+1' , version should be an integral value > 0"
            ),
            version="+1",
            forms=("v2 JSON", "/predict", "raw"),
        ),
        Case(
            "an unknown input is named with the model's inputs",
            README,
            "digits",
            (image(name="pixels"),),
            refused("model 'digits' has no input ['pixels']; inputs: ['image']"),
        ),
        Case(
            "a quote in an unknown input's name is written as given",
            README,
            "digits",
            (image(name="it's"),),
            refused("model 'digits' has no input ['it's']; inputs: ['image']"),
            forms=("v2 JSON", "v2 binary", "raw"),
        ),
        Case(
            "at most ten unknown names are listed, then how many more",
            README,
            "digits",
            tuple(image(name=f"n{i:02}") for i in range(12)),
            refused(
                "model 'digits' has no input ['n00', 'n01', 'n02', 'n03', 'n04', 'n05', 'n06', "
                "'n07', 'n08', 'n09'] and 2 more; inputs: ['image']"
            ),
            forms=("v2 JSON", "v2 binary", "/predict", "raw"),
        ),
        Case(
            "a missing input is named",
            README,
            "minilm",
            tokens([101, 102])[:1],
            refused("model 'minilm' needs input ['attention_mask']"),
        ),
        Case(
            "an input given twice is refused",
            README,
            "digits",
            (image(), image()),
            refused("input 'image' is given more than once"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "an unknown output is named with the model's outputs",
            README,
            "digits",
            (image(),),
            refused("model 'digits' has no output 'probabilities'; outputs: ['logits']"),
            outputs=("probabilities",),
        ),
        Case(
            "another datatype than the model's is named",
            README,
            "digits",
            (image(datatype="FP64"),),
            refused("input 'image': datatype FP64, model expects FP32"),
        ),
        Case(
            "a shape of another rank is named with the batch hint",
            README,
            "digits",
            (image(shape=(1, 64)),),
            refused(
                "input 'image': shape [1, 64], model expects [-1, 1, 8, 8] (first dimension = batch)"
            ),
        ),
        Case(
            "a fixed dimension of another size is named",
            README,
            "pair",
            (x("FP32", (1.0, 2.0, 3.0), (1, 3)),),
            refused("input 'x': shape [1, 3], model expects [-1, 2] (first dimension = batch)"),
        ),
        Case(
            "a model without batching names no batch dimension",
            README,
            "fixed",
            (x("FP32", (1.0, 2.0)),),
            refused("input 'x': shape [1, 2], model expects [2]"),
        ),
        Case(
            "a model without batching takes its own shape",
            KEY,
            "fixed",
            (x("FP32", (1.0, 2.0), (2,)),),
        ),
        Case(
            "a scalar input of a batching model (metadata without the batch axis) is no crash",
            README,
            "scalar_on_batching",
            (Input("x", "FP32", (), (1.5,)),),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a batch above max_batch_size is refused",
            README,
            "pair",
            (x("FP32", (0.0,) * 10, (5, 2)),),
            refused("batch size 5 is outside 1..4 (max_batch_size)"),
        ),
        Case(
            "a batch of zero is refused",
            README,
            "pair",
            (x("FP32", (), (0, 2)),),
            refused("batch size 0 is outside 1..4 (max_batch_size)"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "inputs that disagree on the batch size are named",
            README,
            "minilm",
            (
                Input("input_ids", "INT64", (1, 2), (101, 102)),
                Input("attention_mask", "INT64", (2, 2), (1, 1, 1, 1)),
            ),
            refused("inputs 'input_ids' and 'attention_mask' disagree on the batch size: 1 vs 2"),
        ),
        Case(
            "a negative dimension is refused",
            KSERVE,
            "pair",
            (x("FP32", (), (-1, 2)),),
            refused("input 'x': shape [-1, 2] must be non-negative"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a shape whose element count overflows is refused",
            README,
            "pair",
            (x("FP32", (1.0,), (1, 4294967296, 4294967296)),),
            refused("input 'x': shape [1, 4294967296, 4294967296] is too large"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a shape whose byte count overflows is refused",
            README,
            "pair",
            (x("FP32", (1.0,), (1, 7, 0x6DB6DB6DB6DB6DB7)),),
            refused("input 'x': shape [1, 7, 7905747460161236407] is too large"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a shape of more than 32 dimensions is refused naming the input (numpy's limit)",
            README,
            "pair",
            (x("FP32", (1.0,), (1,) * 33),),
            refused(f"input 'x': shape [{', '.join(['1'] * 32)}, ...] has 33 dimensions, {MORE}"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a BYTES shape of more than 32 dimensions is refused naming the input",
            README,
            "echo_bytes",
            (x("BYTES", ("a",), (1,) * 33),),
            refused(f"input 'x': shape [{', '.join(['1'] * 32)}, ...] has 33 dimensions, {MORE}"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a shape with a zero and a dimension beyond the element bound is refused",
            README,
            "pair",
            (x("FP32", (), (0, 2**62)),),
            refused("input 'x': shape [0, 4611686018427387904] is too large"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "values that do not fill the shape are counted",
            README,
            "pair",
            (x("FP32", (1.0,)),),
            refused("input 'x': 1 values do not fill shape [1, 2]"),
            forms=("v2 JSON", "typed"),
        ),
        Case(
            "bytes that do not fill the shape are counted",
            README,
            "pair",
            (x("FP32", (1.0,)),),
            refused("input 'x': 4 bytes, shape [1, 2] of FP32 needs 8"),
            forms=("v2 binary", "raw"),
        ),
        Case(
            "an unknown datatype is named",
            KSERVE,
            "pair",
            (x("FP128", (1.0, 2.0)),),
            refused("input 'x': unknown datatype 'FP128'"),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
    ]


def empty_and_ranges() -> list[Case]:
    """allow_empty:<input>, declared empty axes, valid_range:<input> and its malformed values."""
    return [
        Case(
            "an empty sequence is refused without allow_empty",
            FAILURES,
            "minilm",
            tokens([]),
            refused(
                "input 'input_ids': shape [1, 0] has an empty axis, which the model does not "
                "accept (config parameter allow_empty:input_ids)"
            ),
        ),
        Case("an empty sequence passes with allow_empty", README, "minilm_allow_empty", tokens([])),
        Case(
            "an axis the model declares empty is no empty sequence",
            README,
            "zero_axis",
            (Input("x", "INT64", (1, 0), ()),),
        ),
        Case(
            "an id beyond valid_range is named with the range",
            FAILURES,
            "minilm",
            tokens([101, 40000, 102]),
            refused(
                "input 'input_ids': value 40000 is outside the valid range [0, 30521] "
                "(config parameter valid_range:input_ids)"
            ),
        ),
        Case(
            "the first id below valid_range is named",
            FAILURES,
            "minilm",
            tokens([101, -5, 40000]),
            refused(
                "input 'input_ids': value -5 is outside the valid range [0, 30521] "
                "(config parameter valid_range:input_ids)"
            ),
        ),
        Case("ids at both bounds of valid_range pass", README, "minilm", tokens([0, 30521])),
        Case(
            "a UINT64 id beyond int64 is named in full",
            README,
            "ids_uint64",
            (x("UINT64", (1, 2**64 - 1)),),
            refused(
                "input 'x': value 18446744073709551615 is outside the valid range [0, 100] "
                "(config parameter valid_range:x)"
            ),
        ),
        Case(
            "a negative INT8 id is outside valid_range",
            README,
            "ids_int8",
            (x("INT8", (-1, 2)),),
            refused(
                "input 'x': value -1 is outside the valid range [0, 100] (config parameter valid_range:x)"
            ),
        ),
        Case(
            "an INT32 id one past valid_range is refused",
            README,
            "ids_int32",
            (x("INT32", (100, 101)),),
            refused(
                "input 'x': value 101 is outside the valid range [0, 100] (config parameter valid_range:x)"
            ),
        ),
        *(
            Case(
                f"valid_range '{value}' is a misconfiguration named in a 500",
                README,
                name,
                (x("INT64", (1,), (1, 1)),),
                refused(
                    f"model '{name}': config parameter valid_range:x = '{value}' is not "
                    "'<min>,<max>' (inclusive integers)",
                    500,
                ),
                forms=("v2 JSON", "raw"),
            )
            for name, value in MALFORMED_RANGES
        ),
        Case(
            "valid_range may have spaces around its integers",
            README,
            "range_with_spaces",
            (x("INT64", (10,), (1, 1)),),
            refused(
                "input 'x': value 10 is outside the valid range [0, 9] (config parameter valid_range:x)"
            ),
        ),
    ]


def lengths() -> list[Case]:
    """max_length:<input>: the variable axis after the batch, and its malformed values."""
    over = tuple(range(1000, 1513))
    return [
        Case(
            "a sequence beyond max_length is named with its length and the limit",
            FAILURES,
            "minilm",
            tokens(list(over)),
            refused(
                "input 'input_ids': length 513 exceeds the model's maximum 512 "
                "(config parameter max_length:input_ids)"
            ),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "a sequence of max_length tokens passes",
            README,
            "minilm",
            tokens(list(over[:512])),
            forms=("v2 JSON", "raw"),
        ),
        Case(
            "the batch axis is not held to max_length",
            README,
            "length_with_spaces",
            (x("INT64", (1, 2, 3, 4, 5, 6), (3, 2)),),
        ),
        Case(
            "max_length may have spaces around its integer",
            README,
            "length_with_spaces",
            (x("INT64", (1, 2, 3), (1, 3)),),
            refused(
                "input 'x': length 3 exceeds the model's maximum 2 (config parameter max_length:x)"
            ),
        ),
        *(
            Case(
                f"max_length '{value}' is a misconfiguration named in a 500",
                README,
                name,
                (x("INT64", (1,), (1, 1)),),
                refused(
                    f"model '{name}': config parameter max_length:x = '{value}' is not "
                    "'<n>' (a positive integer)",
                    500,
                ),
                forms=("v2 JSON", "raw"),
            )
            for name, value in MALFORMED_LENGTHS
        ),
    ]


def xz(first: int, second: int) -> tuple[Input, ...]:
    """`x` of shape [1, first] and `z` of shape [1, second], ones."""
    return (
        Input("x", "INT64", (1, first), (1,) * first),
        Input("z", "INT64", (1, second), (1,) * second),
    )


def shared_axes() -> list[Case]:
    """shared_axis:<name>: axes that always have one length, and its malformed values."""
    mismatch = (
        Input("input_ids", "INT64", (1, 3), (101, 2003, 102)),
        Input("attention_mask", "INT64", (1, 2), (1, 1)),
    )
    return [
        Case(
            "ids and a mask of different lengths are refused naming both",
            FAILURES,
            "minilm",
            mismatch,
            refused(
                "inputs 'input_ids' and 'attention_mask' disagree on the length of axis "
                "'sequence': 3 vs 2 (config parameter shared_axis:sequence)"
            ),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
        ),
        Case(
            "the mask given first is checked against the ids all the same",
            FAILURES,
            "minilm",
            mismatch[::-1],
            refused(
                "inputs 'input_ids' and 'attention_mask' disagree on the length of axis "
                "'sequence': 3 vs 2 (config parameter shared_axis:sequence)"
            ),
        ),
        Case("inputs of one length pass", README, "shared_with_spaces", xz(2, 2)),
        Case(
            "shared_axis may have spaces around its names and axes",
            README,
            "shared_with_spaces",
            xz(2, 3),
            refused(
                "inputs 'x' and 'z' disagree on the length of axis 'length': 2 vs 3 "
                "(config parameter shared_axis:length)"
            ),
        ),
        *(
            Case(
                f"shared_axis '{value}' is a misconfiguration named in a 500",
                README,
                name,
                xz(1, 1),
                refused(
                    f"model '{name}': config parameter shared_axis:length = '{value}' is not "
                    "'<input>:<axis>,<input>:<axis>[,...]'",
                    500,
                ),
                forms=("v2 JSON", "raw"),
            )
            for name, value in MALFORMED_SHARED_AXES
        ),
        *(
            Case(
                f"shared_axis naming {what} is a misconfiguration named in a 500",
                README,
                name,
                xz(1, 1),
                refused(
                    f"model '{name}': config parameter shared_axis:length names axis {axis} of "
                    f"input '{input_name}', which the model does not have",
                    500,
                ),
                forms=("v2 JSON", "raw"),
            )
            for what, name, axis, input_name in (
                ("an axis beyond the input's rank", "shared_beyond_rank", 2, "z"),
                ("an input the model lacks", "shared_unknown_input", 1, "w"),
            )
        ),
    ]


def datatypes() -> list[Case]:
    """Every datatype in every form that can carry it, and the JSON values each refuses."""
    values = {"BOOL": (True, False), "BYTES": ("a", "bc")}
    cases = [
        Case(
            f"{datatype} travels in every form that carries it",
            KSERVE,
            f"echo_{datatype.lower()}",
            (x(datatype, values.get(datatype, (1, 2))),),
            # an FP16 or BF16 output is answered over HTTP as binary data only
            parameters=(("binary_data_output", True),) if datatype in BINARY_ONLY else (),
        )
        for datatype in DATATYPES
    ]
    half = (
        "receiving {} data via JSON is not supported. Please use the binary data format for input x"
    )
    cases += [
        Case(
            f"{datatype} in KServe JSON is refused with Triton's message",
            TRITON,
            f"echo_{datatype.lower()}",
            (x(datatype, (1.0, 2.0), json="[1.0, 2.0]"),),
            refused(half.format(datatype)),
            forms=("v2 JSON",),
        )
        for datatype in ("FP16", "BF16")
    ]
    cases += [
        Case(
            f"{datatype} as typed gRPC contents is refused (no field carries it)",
            README,
            f"echo_{datatype.lower()}",
            (x(datatype, (1.0, 2.0)),),
            refused(f"input 'x': datatype '{datatype}' needs raw contents"),
            forms=("typed",),
        )
        for datatype in ("FP16", "BF16")
    ]
    cases += [
        Case(
            "FP16 on /predict is read from JSON numbers into the same key",
            README,
            "echo_fp16",
            (x("FP16", (1.0, 2.0), json="[[1.0, 2.0]]"),),
            forms=("/predict",),
            same_key_as="FP16 travels in every form that carries it",
        ),
        Case(
            "BF16 on /predict is refused as in KServe JSON",
            TRITON,
            "echo_bf16",
            (x("BF16", (1.0, 2.0), json="[[1.0, 2.0]]"),),
            refused(half.format("BF16")),
            forms=("/predict",),
        ),
        Case(
            "an FP16 output asked for as JSON is refused with Triton's message",
            TRITON,
            "echo_fp16",
            (x("FP16", (1.0, 2.0)),),
            refused(
                "sending FP16 data via JSON is not supported. Please use the binary data format "
                "for output y"
            ),
            forms=("v2 binary",),
        ),
        Case(
            "an FP16 output asked for as binary data is answered",
            README,
            "echo_fp16",
            (x("FP16", (1.0, 2.0)),),
            parameters=(("binary_data_output", True),),
            forms=("v2 binary",),
            same_key_as="FP16 travels in every form that carries it",
        ),
    ]
    return cases + json_values()


def json_values() -> list[Case]:
    """JSON values that are not what the datatype holds (HTTP only: gRPC contents are typed)."""
    json_forms = ("v2 JSON", "/predict")
    return [
        Case(
            "a JSON literal beyond FP32 is refused",
            README,
            "echo_fp32",
            (x("FP32", (), json="[[1e39, 1.0]]"),),
            refused("input 'x': value 1e+39 is out of range for FP32"),
            forms=json_forms,
        ),
        Case(
            "a JSON literal beyond FP64 is refused",
            README,
            "echo_fp64",
            (x("FP64", (), json="[[1e309, 1.0]]"),),
            refused("input 'x': value 1e+309 is out of range for FP64"),
            forms=json_forms,
        ),
        Case(
            "a /predict value beyond FP16 is refused",
            README,
            "echo_fp16",
            (x("FP16", (), json="[[70000.5, 1.0]]"),),
            refused("input 'x': value 70000.5 is out of range for FP16"),
            forms=("/predict",),
        ),
        Case(
            "NaN and Infinity tokens are the values they name, one key with their raw bytes",
            README,
            "echo_fp32",
            (x("FP32", (float("nan"), float("inf")), json="[[NaN, Infinity]]"),),
            forms=("v2 JSON", "/predict"),
            same_key_as="NaN and Infinity as raw bytes",
        ),
        Case(
            "NaN and Infinity as raw bytes",
            README,
            "echo_fp32",
            (x("FP32", (float("nan"), float("inf"))),),
            forms=("v2 binary", "raw", "typed"),
        ),
        Case(
            "integral JSON numbers like 2.0 are the integers they name (Triton refuses them)",
            README,
            "echo_int32",
            (x("INT32", (1, 2), json="[[1.0, 2.0]]"),),
            forms=json_forms,
            same_key_as="INT32 travels in every form that carries it",
        ),
        Case(
            "an integer datatype refuses fractions",
            README,
            "echo_int32",
            (x("INT32", (), json="[[1.5, 2]]"),),
            refused("input 'x': INT32 needs integer values"),
            forms=json_forms,
        ),
        Case(
            "an integer datatype refuses true and false (Triton cannot parse them)",
            TRITON,
            "echo_int64",
            (x("INT64", (), json="[[true, 2]]"),),
            refused("input 'x': INT64 needs numbers, not true or false"),
            forms=json_forms,
        ),
        Case(
            "BOOL refuses numbers (Triton cannot parse them)",
            TRITON,
            "echo_bool",
            (x("BOOL", (), json="[[1, 0]]"),),
            refused("input 'x': BOOL needs true or false values"),
            forms=json_forms,
        ),
        Case(
            "a value beyond INT8 is refused",
            README,
            "echo_int8",
            (x("INT8", (300, 1), json="[[300, 1]]"),),
            refused("input 'x': values out of range for INT8"),
            forms=(*json_forms, "typed"),
        ),
        Case(
            "a negative UINT8 is refused",
            README,
            "echo_uint8",
            (x("UINT8", (), json="[[-1, 1]]"),),
            refused("input 'x': values out of range for UINT8"),
            forms=json_forms,
        ),
        Case(
            "an integer beyond 64 bits is out of range, not a ragged array",
            README,
            "echo_int64",
            (x("INT64", (), json="[[18446744073709551616, 1]]"),),
            refused("input 'x': values out of range for INT64"),
            forms=json_forms,
        ),
        Case(
            "an integer below INT64 is out of range",
            README,
            "echo_int64",
            (x("INT64", (), json="[[-9223372036854775809, 1]]"),),
            refused("input 'x': values out of range for INT64"),
            forms=json_forms,
        ),
        Case(
            "strings are no numbers",
            README,
            "echo_fp32",
            (x("FP32", (), json='[["a", "b"]]'),),
            refused("input 'x': values must be numbers in a rectangular array"),
            forms=json_forms,
        ),
        Case(
            "ragged arrays are refused",
            README,
            "echo_fp32",
            (x("FP32", (), json="[[1.0, 2.0], [3.0]]"),),
            refused("input 'x': values must be numbers in a rectangular array"),
            forms=json_forms,
        ),
        Case(
            "ragged integer arrays are refused",
            README,
            "echo_int64",
            (x("INT64", (), json="[[1, 2], [3]]"),),
            refused("input 'x': values must be numbers in a rectangular array"),
            forms=json_forms,
        ),
        Case(
            "an integer literal beyond 64 bits is out of range for FP32",
            README,
            "echo_fp32",
            (x("FP32", (), json=f"[[{10**42}, 1.0]]"),),
            refused("input 'x': value 1e+42 is out of range for FP32"),
            forms=json_forms,
        ),
        Case(
            "BYTES values must be strings",
            README,
            "echo_bytes",
            (x("BYTES", (), json="[[1, 2]]"),),
            refused("input 'x': BYTES values must be strings"),
            forms=json_forms,
        ),
        Case(
            "a truncated BYTES element is refused",
            README,
            "echo_bytes",
            (x("BYTES", (), raw=struct.pack("<I", 9) + b"a"),),
            refused("input 'x': truncated BYTES element"),
            forms=("v2 binary", "raw"),
        ),
        Case(
            "BYTES elements that do not fill the shape are counted",
            README,
            "echo_bytes",
            (x("BYTES", (), raw=struct.pack("<I", 1) + b"a"),),
            refused("input 'x': 1 elements do not fill shape [1, 2]"),
            forms=("v2 binary", "raw"),
        ),
    ]


def parameters() -> list[Case]:
    """Request, input and output parameters: forwarded where Triton honours them, else refused."""
    http_supported = "supported: ['binary_data_output', 'priority', 'timeout']"
    grpc_supported = "supported: ['priority', 'timeout', 'triton_enable_empty_final_response']"
    unsupported = "request parameters ['sequence_id'] are not supported by the gateway; "
    forwarded = {"priority": {"uint64_param": "1"}, "timeout": {"int64_param": "1000000"}}
    return [
        Case(
            "priority and timeout reach Triton and stay out of the key",
            README,
            "digits",
            (image(),),
            Expect(forwarded=forwarded),
            parameters=(("priority", 1), ("timeout", 1000000)),
            forms=("v2 JSON", "v2 binary", "raw", "typed"),
            same_key_as="an image in every form has one key",
        ),
        Case(
            "a gRPC priority as int64 and the empty-final-response flag reach Triton as given",
            TRITON,
            "digits",
            (image(),),
            Expect(
                forwarded={
                    "priority": {"int64_param": "2"},
                    "triton_enable_empty_final_response": {"bool_param": True},
                }
            ),
            grpc_parameters=(
                ("priority", {"int64_param": "2"}),
                ("triton_enable_empty_final_response", {"bool_param": True}),
            ),
            forms=("raw",),
            same_key_as="an image in every form has one key",
        ),
        Case(
            "binary_data_output is the gateway's own and never reaches Triton",
            KSERVE,
            "digits",
            (image(),),
            parameters=(("binary_data_output", True),),
            forms=("v2 JSON", "v2 binary"),
            same_key_as="an image in every form has one key",
        ),
        Case(
            "any other request parameter is refused by name, never dropped",
            README,
            "digits",
            (image(),),
            refused(
                "",
                http_message=unsupported + http_supported,
                grpc_message=unsupported + grpc_supported,
            ),
            parameters=(("sequence_id", 4),),
            forms=("v2 JSON", "v2 binary", "raw"),
        ),
        Case(
            "a negative priority is refused on a hit as on a miss",
            TRITON,
            "digits",
            (image(),),
            refused(
                "",
                http_message="Unable to parse 'priority'",
                grpc_message="invalid value for 'priority', expected value >= 0.",
            ),
            parameters=(("priority", -1),),
            grpc_parameters=(("priority", {"int64_param": "-1"}),),
            forms=("v2 JSON", "raw"),
        ),
        Case(
            "a priority beyond uint64 is refused",
            TRITON,
            "digits",
            (image(),),
            refused("Unable to parse 'priority'"),
            parameters=(("priority", 2**64),),
            forms=("v2 JSON",),
        ),
        Case(
            "a priority of another type is refused",
            TRITON,
            "digits",
            (image(),),
            refused(
                "",
                http_message="Unable to parse 'priority'",
                grpc_message="invalid value type for 'priority' parameter, expected int64_param "
                "or uint64_param.",
            ),
            parameters=(("priority", "1"),),
            grpc_parameters=(("priority", {"string_param": "1"}),),
            forms=("v2 JSON", "raw"),
        ),
        Case(
            "a timeout of another type is refused",
            TRITON,
            "digits",
            (image(),),
            refused(
                "",
                http_message="Unable to parse 'timeout'",
                grpc_message="invalid value type for 'timeout' parameter, expected int64_param.",
            ),
            parameters=(("timeout", "soon"),),
            grpc_parameters=(("timeout", {"uint64_param": "5"}),),
            forms=("v2 JSON", "raw"),
        ),
        Case(
            "a timeout beyond int64 is refused",
            README,
            "digits",
            (image(),),
            refused("Unable to parse 'timeout'"),
            parameters=(("timeout", 2**63),),
            forms=("v2 JSON",),
        ),
        Case(
            "the empty-final-response flag must be a bool",
            TRITON,
            "digits",
            (image(),),
            refused(
                "invalid value type for 'triton_enable_empty_final_response' parameter, "
                "expected bool_param."
            ),
            grpc_parameters=(("triton_enable_empty_final_response", {"int64_param": "1"}),),
            forms=("raw",),
        ),
        Case(
            "binary_data_output must be a bool",
            KSERVE,
            "digits",
            (image(),),
            refused("Unable to parse 'binary_data_output'"),
            parameters=(("binary_data_output", 1),),
            forms=("v2 JSON",),
        ),
        Case(
            "an input parameter is refused by name",
            README,
            "digits",
            (image(parameters=(("shared_memory_region", "r"),)),),
            refused(
                "input 'image': parameters ['shared_memory_region'] are not supported by the gateway"
            ),
            forms=("v2 JSON", "v2 binary"),
        ),
        Case(
            "a gRPC input parameter is refused by name",
            README,
            "digits",
            (image(parameters=(("shared_memory_region", {"string_param": "r"}),)),),
            refused(
                "input 'image': parameters ['shared_memory_region'] are not supported by the gateway"
            ),
            forms=("raw",),
        ),
        Case(
            "an output parameter is refused by name",
            README,
            "digits",
            (image(),),
            refused(
                "output 'logits': parameters ['classification'] are not supported by the gateway"
            ),
            outputs=("logits",),
            output_parameters=(("logits", (("classification", 3),)),),
            forms=("v2 JSON",),
        ),
        Case(
            "a gRPC output parameter is refused by name",
            README,
            "digits",
            (image(),),
            refused(
                "output 'logits': parameters ['classification'] are not supported by the gateway"
            ),
            outputs=("logits",),
            output_parameters=(("logits", (("classification", {"int64_param": "3"}),)),),
            forms=("raw",),
        ),
        Case(
            "an output's binary_data must be a bool",
            KSERVE,
            "digits",
            (image(),),
            refused("output 'logits': Unable to parse 'binary_data'"),
            outputs=("logits",),
            output_parameters=(("logits", (("binary_data", "yes"),)),),
            forms=("v2 JSON",),
        ),
    ]


def wire_formats() -> list[Case]:
    """Faults of one protocol's framing: binary data sizes (HTTP), raw contents (gRPC)."""
    raw = struct.pack("<64f", *IMAGE_VALUES)
    return [
        Case(
            "binary data shorter than binary_data_size is refused",
            "Triton extension_binary_data.md",
            "digits",
            (image(raw=raw, parameters=(("binary_data_size", 300),)),),
            refused(
                "input 'image': binary_data_size 300, but only 256 bytes of binary data remain"
            ),
            forms=("v2 binary",),
        ),
        Case(
            "binary data beyond the last input is refused",
            "Triton extension_binary_data.md",
            "digits",
            (image(raw=raw + b"tail", parameters=(("binary_data_size", 256),)),),
            refused("4 bytes of binary data follow the last binary input"),
            forms=("v2 binary",),
        ),
        Case(
            "data and binary_data_size together are refused",
            "Triton extension_binary_data.md",
            "digits",
            (image(parameters=(("binary_data_size", 256),)),),
            refused(
                "input 'image': must set exactly one of 'data' and 'binary_data_size' in 'parameters'"
            ),
            forms=("v2 JSON",),
        ),
        Case(
            "raw bytes of the wrong size are counted",
            README,
            "digits",
            (image(raw=raw[:252]),),
            refused("input 'image': 252 bytes, shape [1, 1, 8, 8] of FP32 needs 256"),
            forms=("v2 binary", "raw"),
        ),
        Case(
            "raw and typed contents together are refused",
            "KServe v2 gRPC protocol",
            "digits",
            (image(),),
            refused("input 'image': contents and raw_input_contents are exclusive"),
            forms=("raw+typed",),
        ),
        Case(
            "raw contents must be one per input",
            "KServe v2 gRPC protocol",
            "minilm",
            tokens([101, 102]),
            refused("raw_input_contents must hold one entry per input"),
            forms=("raw, one missing",),
        ),
    ]


def keys() -> list[Case]:
    """What the key is made of: the same tensors in any order, the requested outputs as a set,
    the fingerprints of an ensemble's steps; and models whose answers are never stored."""
    return [
        Case("tokens", KEY, "minilm", tokens([101, 7592, 102])),
        Case(
            "inputs in another order share the key",
            KEY,
            "minilm",
            tokens([101, 7592, 102], mask_first=True),
            same_key_as="tokens",
        ),
        Case(
            "both outputs named", KEY, "pair", (x("FP32", (1.0, 2.0)),), outputs=("sum", "product")
        ),
        Case(
            "outputs named in another order share the key",
            KEY,
            "pair",
            (x("FP32", (1.0, 2.0)),),
            outputs=("product", "sum"),
            same_key_as="both outputs named",
        ),
        Case(
            "an output named twice is named once",
            TRITON,
            "pair",
            (x("FP32", (1.0, 2.0)),),
            outputs=("sum", "product", "sum"),
            same_key_as="both outputs named",
        ),
        Case(
            "an output named with <, & and > is stored as written",
            "gateway/codec.py",
            "markup_names",
            (x("FP32", (1.0,), (1, 1)),),
        ),
        Case(
            "one output named has its own key",
            KEY,
            "pair",
            (x("FP32", (1.0, 2.0)),),
            outputs=("sum",),
        ),
        Case("no output named (all) has its own key", KEY, "pair", (x("FP32", (1.0, 2.0)),)),
        Case(
            "an ensemble's key holds its steps' fingerprints",
            KEY,
            "minilm_text",
            (Input("text", "BYTES", (1, 1), ("Triton batches requests.",)),),
        ),
        Case(
            "a model without a fingerprint is answered, never stored",
            FAILURES,
            "handwritten",
            (image(),),
            Expect(cached=False, cache_bypassed="no_fingerprint"),
        ),
        Case(
            "an ensemble with a step without a fingerprint is answered, never stored",
            FAILURES,
            "text_with_handwritten_step",
            (Input("text", "BYTES", (1, 1), ("a step was written by hand",)),),
            Expect(cached=False, cache_bypassed="no_fingerprint"),
        ),
    ]


ORT_FAULT = (
    "onnxruntime: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned "
    "while running EmbedLayerNormalization node. Status Message: input index out of range"
)
# Triton's status code and message -> (HTTP status, gRPC code, the client's message, Retry-After,
# the queue rejection counted).
TRITON_ERRORS = (
    (
        "UNAVAILABLE",
        "Exceeds maximum queue size",
        429,
        "RESOURCE_EXHAUSTED",
        "model queue is full: Exceeds maximum queue size",
        True,
        "queue_full",
    ),
    (
        "UNAVAILABLE",
        "Request timeout expired",
        429,
        "RESOURCE_EXHAUSTED",
        "request timed out in the model queue: Request timeout expired",
        True,
        "queue_timeout",
    ),
    (
        "RESOURCE_EXHAUSTED",
        "too big",
        429,
        "RESOURCE_EXHAUSTED",
        "model queue is full: too big",
        True,
        "",
    ),
    (
        "INTERNAL",
        ORT_FAULT,
        400,
        "INVALID_ARGUMENT",
        f"the model rejected the input: {ORT_FAULT}",
        False,
        "",
    ),
    (
        "UNKNOWN",
        "Invalid rank for input: image Got: 3 Expected: 4",
        400,
        "INVALID_ARGUMENT",
        "the model rejected the input: Invalid rank for input: image Got: 3 Expected: 4",
        False,
        "",
    ),
    (
        "INTERNAL",
        "Got invalid dimensions for input: image for the following indices",
        400,
        "INVALID_ARGUMENT",
        "the model rejected the input: Got invalid dimensions for input: image for the following indices",
        False,
        "",
    ),
    (
        "INTERNAL",
        "onnxruntime: bad things",
        502,
        "INTERNAL",
        "inference server error (INTERNAL): onnxruntime: bad things",
        False,
        "",
    ),
    (
        "UNIMPLEMENTED",
        "no such method",
        502,
        "INTERNAL",
        "inference server error (UNIMPLEMENTED): no such method",
        False,
        "",
    ),
    (
        "UNKNOWN",
        "stub crashed",
        503,
        "UNAVAILABLE",
        "inference server unavailable: stub crashed",
        True,
        "",
    ),
    (
        "CANCELLED",
        "Cancelled",
        503,
        "UNAVAILABLE",
        "inference server unavailable: Cancelled",
        True,
        "",
    ),
    (
        "UNAVAILABLE",
        "failed to connect to all addresses",
        503,
        "UNAVAILABLE",
        "inference server unavailable: failed to connect to all addresses",
        True,
        "",
    ),
    (
        "INVALID_ARGUMENT",
        "index out of range",
        400,
        "INVALID_ARGUMENT",
        "index out of range",
        False,
        "",
    ),
    (
        "NOT_FOUND",
        "Request for unknown model",
        404,
        "NOT_FOUND",
        "Request for unknown model",
        False,
        "",
    ),
    (
        "DEADLINE_EXCEEDED",
        "Deadline Exceeded",
        504,
        "DEADLINE_EXCEEDED",
        "inference deadline exceeded",
        False,
        "",
    ),
)


def rows(*firsts: float) -> tuple[Input, ...]:
    """A batch for the `rows` models: row r is [first, first + 0.25]."""
    values = tuple(v for first in firsts for v in (first, first + 0.25))
    return (x("FP32", values, (len(firsts), 2)),)


ROW_CACHE = "docs/cache.md, Per-row cache"


def row_cache() -> list[Case]:
    """The per-row cache: which rows reach Triton, in which order, what is stored per row and
    what the answer says; and the models that keep the whole-request key."""
    texts = ("one sentence is one row", "a second row", "one sentence is one row")
    return [
        Case("a batch of new rows is stored row by row", ROW_CACHE, "rows", rows(1, 2)),
        Case(
            "identical rows of one request reach Triton once",
            ROW_CACHE,
            "rows",
            rows(1, 2, 1, 1),
        ),
        Case(
            "only the rows the cache lacks reach Triton, in request order",
            ROW_CACHE,
            "rows",
            rows(4, 3, 2, 1),
            seeded=(1, 3),
        ),
        Case(
            "a batch of cached rows is a HIT that never reaches Triton",
            ROW_CACHE,
            "rows",
            rows(2, 1, 2),
            seeded=(0, 1),
        ),
        Case(
            "the requested outputs are part of a row's key",
            ROW_CACHE,
            "rows",
            rows(1, 2),
            outputs=("z",),
            seeded=(1,),
        ),
        Case(
            "a row holding NaN is answered, never stored; its batch-mates are",
            ROW_CACHE,
            "rows",
            rows(1, 2),
            Expect(cache_bypassed="non_finite"),
            parameters=(("binary_data_output", True),),
            answer=Answer(
                (
                    Input("y", "FP32", (2, 1), (float("nan"), 1.0)),
                    Input("z", "FP32", (2, 1), (1.0, 2.0)),
                )
            ),
            forms=("v2 binary", "raw"),
        ),
        Case(
            "a text ensemble whose steps batch is cached per sentence",
            ROW_CACHE,
            "rows_text",
            (Input("text", "BYTES", (3, 1), texts),),
            seeded=(1,),
        ),
        Case(
            "row_cache set to true turns it on without dynamic batching",
            ROW_CACHE,
            "rows_switched_on",
            rows(1, 2),
        ),
        Case(
            "row_cache set to false keeps the whole-request key",
            ROW_CACHE,
            "rows_switched_off",
            rows(1, 2),
        ),
        Case(
            "an output with a variable axis keeps the whole-request key",
            ROW_CACHE,
            "rows_variable_output",
            rows(1, 2),
        ),
        Case(
            "a model without a batch axis keeps the whole-request key",
            ROW_CACHE,
            "fixed",
            (x("FP32", (1.0, 2.0), (2,)),),
        ),
        Case(
            "a row_cache that is neither true nor false is a misconfiguration named in a 500",
            ROW_CACHE,
            "rows_bad_switch",
            rows(1),
            refused(
                "model 'rows_bad_switch': config parameter row_cache = 'yes' is not 'true' or 'false'",
                500,
            ),
            forms=("v2 JSON", "raw"),
        ),
    ]


def triton_answers() -> list[Case]:
    """Triton's errors as each front end answers them, and answers that must not be stored."""
    cases = [
        Case(
            f"Triton's {code} '{message[:40]}' is a {status}",
            FAILURES,
            "digits",
            (image(),),
            failed(status, grpc_code, answer, retry_after=retry, queue_rejection=reason),
            answer=Answer(error_code=code, error_message=message),
            forms=("v2 JSON", "/predict", "raw"),
        )
        for code, message, status, grpc_code, answer, retry, reason in TRITON_ERRORS
    ]
    nan, inf = float("nan"), float("inf")
    cases += [
        Case(
            "an answer without the outputs asked for is a 502, never stored",
            FAILURES,
            "digits",
            (image(),),
            failed(502, "INTERNAL", "incomplete response from Triton: [] != ['logits']"),
            answer=Answer(()),
            forms=("v2 JSON", "raw"),
        ),
        Case(
            "an answer whose bytes do not fill its shape is a 502",
            FAILURES,
            "digits",
            (image(),),
            failed(
                502,
                "INTERNAL",
                "malformed response from Triton: output 'logits': 4 bytes, shape [1, 10] of FP32 needs 40",
            ),
            answer=Answer((Input("logits", "FP32", (1, 10), raw=b"\0" * 4),)),
            forms=("v2 JSON", "raw"),
        ),
        *(
            Case(
                f"an {datatype} answer holding {label} is answered, never stored",
                FAILURES,
                f"echo_{datatype.lower()}",
                (x(datatype, (1.0, 2.0)),),
                Expect(cached=False, cache_bypassed="non_finite"),
                parameters=(("binary_data_output", True),),
                answer=Answer((Input("y", datatype, (1, 2), (value, 1.0)),)),
                forms=("v2 binary", "raw"),
            )
            for datatype, label, value in (
                ("FP32", "NaN", nan),
                ("FP64", "-Infinity", -inf),
                ("FP16", "Infinity", inf),
                ("BF16", "NaN", nan),
            )
        ),
    ]
    return cases


CASES = (
    *shapes_and_names(),
    *empty_and_ranges(),
    *lengths(),
    *shared_axes(),
    *datatypes(),
    *parameters(),
    *wire_formats(),
    *keys(),
    *triton_answers(),
    *row_cache(),
)


def settings_cases() -> list[dict]:
    """How both gateways read GATEWAY_* (env -> every parsed setting, or the variable refused)."""
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    every = {
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "9080",
        "GATEWAY_GRPC_PORT": "9081",
        "GATEWAY_GRPC_METRICS_PORT": "9082",
        "GATEWAY_WORKERS": "2",
        "GATEWAY_CPUS": "0,1",
        "GATEWAY_TRITON_URL": "triton-a:8001, triton-b:8001",
        "GATEWAY_REDIS_URL": "redis://cache:6379/1",
        "GATEWAY_CACHE_ENABLED": "off",
        "GATEWAY_CACHE_TTL_S": "60",
        "GATEWAY_CACHE_MODEL_TTL_S": '{"digits": 60, "minilm": 0}',
        "GATEWAY_CACHE_MAX_VALUE_BYTES": "2048",
        "GATEWAY_REDIS_TIMEOUT_MS": "20",
        "GATEWAY_REDIS_RETRY_AFTER_S": "0.25",
        "GATEWAY_TRITON_TIMEOUT_MS": "500",
        "GATEWAY_MODEL_INFO_TTL_S": "0",
        "GATEWAY_MAX_IN_FLIGHT": "32",
        "GATEWAY_MAX_BODY_BYTES": "1048576",
        "GATEWAY_API_KEYS": "k1,k2",
    }
    parsed = {
        "host": "0.0.0.0",
        "port": 9080,
        "grpc_port": 9081,
        "grpc_metrics_port": 9082,
        "workers": 2,
        "cpus": [0, 1],
        "triton_url": ["triton-a:8001", "triton-b:8001"],
        "redis_url": "redis://cache:6379/1",
        "cache_enabled": False,
        "cache_ttl_s": 60,
        "cache_model_ttl_s": {"digits": 60, "minilm": 0},
        "cache_max_value_bytes": 2048,
        "redis_timeout_ms": 20,
        "redis_retry_after_s": 0.25,
        "triton_timeout_ms": 500,
        "model_info_ttl_s": 0.0,
        "max_in_flight": 32,
        "max_body_bytes": 1048576,
        "api_keys": ["k1", "k2"],
    }
    read = [
        ("every default", {}, {}),
        ("every variable set", every, parsed),
        (
            "spaces around values are dropped",
            {
                "GATEWAY_HOST": " 0.0.0.0 ",
                "GATEWAY_CACHE_TTL_S": " 60 ",
                "GATEWAY_CACHE_ENABLED": " yes ",
            },
            {"host": "0.0.0.0", "cache_ttl_s": 60},
        ),
        ("true spelled 1", {"GATEWAY_CACHE_ENABLED": "1"}, {}),
        ("false spelled No", {"GATEWAY_CACHE_ENABLED": "No"}, {"cache_enabled": False}),
        ("a signed integer", {"GATEWAY_CACHE_TTL_S": "+5"}, {"cache_ttl_s": 5}),
        ("an exponent", {"GATEWAY_REDIS_RETRY_AFTER_S": "1e-1"}, {"redis_retry_after_s": 0.1}),
        ("names are upper case: lower case is not read", {"gateway_cache_ttl_s": "61"}, {}),
        ("empty list items are dropped", {"GATEWAY_API_KEYS": " , k1,, "}, {"api_keys": ["k1"]}),
    ]
    refused = [
        ("GATEWAY_MAX_IN_FLIGHT", "many"),
        ("GATEWAY_CACHE_ENABLED", "maybe"),
        ("GATEWAY_CACHE_ENABLED", ""),
        ("GATEWAY_CACHE_TTL_S", "60.0"),
        ("GATEWAY_CACHE_TTL_S", "1_000"),
        ("GATEWAY_REDIS_RETRY_AFTER_S", "inf"),
        ("GATEWAY_MODEL_INFO_TTL_S", "nan"),
        ("GATEWAY_MODEL_INFO_TTL_S", "0x10"),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": "60"}'),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": 60.5}'),
        ("GATEWAY_CACHE_MODEL_TTL_S", "[]"),
        ("GATEWAY_TRITON_URL", " , "),
        ("GATEWAY_GRPC_PORT", "0"),
        ("GATEWAY_GRPC_METRICS_PORT", "65536"),
        ("GATEWAY_CACHE_TTL_S", "-1"),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": -60}'),
        ("GATEWAY_CACHE_MAX_VALUE_BYTES", "-1"),
        ("GATEWAY_REDIS_TIMEOUT_MS", "0"),
        ("GATEWAY_REDIS_RETRY_AFTER_S", "-0.5"),
        ("GATEWAY_TRITON_TIMEOUT_MS", "-100"),
        ("GATEWAY_MODEL_INFO_TTL_S", "-1"),
        ("GATEWAY_MAX_IN_FLIGHT", "0"),
        ("GATEWAY_MAX_BODY_BYTES", "0"),
        ("GATEWAY_TRITON_TIMEOUT_MS", "99999999999999999999"),
        ("GATEWAY_TRITON_TIMEOUT_MS", "86400001"),
        ("GATEWAY_REDIS_TIMEOUT_MS", "9223372036854775807"),
        ("GATEWAY_MODEL_INFO_TTL_S", "1e300"),
        ("GATEWAY_REDIS_RETRY_AFTER_S", "86401"),
        ("GATEWAY_CACHE_TTL_S", "2147483648"),
        ("GATEWAY_MAX_IN_FLIGHT", "2147483648"),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": 99999999999999999999}'),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": null}'),
        ("GATEWAY_CACHE_MODEL_TTL_S", "null"),
        ("GATEWAY_CACHE_MODEL_TTL_S", "{"),
        ("GATEWAY_CACHE_MODEL_TTL_S", ""),
        ("GATEWAY_CACHE_MODEL_TTL_S", '{"digits": 60} x'),
    ]
    return [
        {"name": name, "env": env, "settings": {**defaults, **changes}}
        for name, env, changes in read
    ] + [
        {"name": f"{variable}={value!r} is refused", "env": {variable: value}, "error": variable}
        for variable, value in refused
    ]


if __name__ == "__main__":  # pragma: no cover - the generator is tests.conformance.corpus
    raise SystemExit("run: python -m tests.conformance.corpus")
