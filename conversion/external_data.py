"""ONNX models whose weights live in external data files (ONNX's external data format).

torch.onnx.export writes `<file>.onnx.data` beside the graph by default (torch 2.x), and a model
of 2 GiB or more must keep its weights outside the graph (protobuf cannot serialize it). These
helpers read such a model with its data and say which files travel with it.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from conversion.spec import SpecError

# protobuf refuses to serialize a message of 2 GiB or more: larger models keep their weights in
# an external data file (ONNX's external data format), written beside the graph.
PROTOBUF_LIMIT = 2**31 - 1


def external_data_files(path: Path) -> list[str]:
    """File names (relative to `path`'s folder) that the ONNX model at `path` keeps weights in."""
    graph = onnx.load(str(path), load_external_data=False).graph
    locations = {
        entry.value
        for tensor in graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return sorted(locations)


def copy_onnx(source: Path, target: Path, limit: int = PROTOBUF_LIMIT) -> Path:
    """Copy the ONNX model at `source` with its weights to `target`; return `target`.

    Weights kept as external data beside `source` (torch.onnx.export writes `<file>.onnx.data`
    by default since torch 2.x) are read, and written inline when the model stays under `limit`
    bytes (the protobuf limit), else into one `<target name>.data` file beside `target`.
    Raises SpecError naming the external data file that is not beside `source`.
    """
    for name in external_data_files(source):
        if not (source.parent / name).is_file():
            raise SpecError(
                f"{source} keeps its weights in external data '{name}', which is not beside it "
                f"({source.parent / name} does not exist): keep the .onnx and its data together"
            )
    model = onnx.load(str(source))  # with external data, read from source's folder
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    target.parent.mkdir(parents=True, exist_ok=True)
    if weights < limit and model.ByteSize() < limit:
        onnx.save_model(model, str(target))
    else:
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{target.name}.data",
        )
    onnx.checker.check_model(str(target), full_check=True)
    return target
