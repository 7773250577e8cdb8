"""The input rules a model's config declares, checked by the twin on each request before it runs.

The converter writes them as config parameters (`conversion.triton_config`), and both gateways
refuse a request that breaks one with a 400 before Triton sees it (`gateway.validation`):
`shared_axis:<name>` = "<input>:<axis>,<input>:<axis>,..." (axes counted with the batch as 0:
one length), `max_length:<input>` = "<n>" (each variable axis, batch aside, at most n long),
`valid_range:<input>` = "<min>,<max>" (inclusive) and `allow_empty:<input>` = "true" (a
variable axis may have length 0; without it, it may not).

A client that calls Triton directly skips the gateways. ONNX Runtime refuses most such requests
itself; OpenVINO Runtime answers them without an error, wrongly: `input_ids` and
`attention_mask` of different lengths get the previous call's output (other requests' answers),
an id outside the vocabulary gets an embedding. So the twin refuses each such request alone,
with the gateways' reasons, whatever its runtime. Copied beside the twin's `model.py`.
"""

import numpy as np

SHARED_AXIS, MAX_LENGTH = "shared_axis:", "max_length:"
VALID_RANGE, ALLOW_EMPTY = "valid_range:", "allow_empty:"


class InputRules:
    """The rules of one model; `violation(feed)` names the first one a request breaks."""

    def __init__(self, config, parameters):
        """`config`: the model config as JSON (the python backend's `args["model_config"]`);
        `parameters`: its {key: string value}. ValueError naming a malformed parameter."""
        batched = 1 if config.get("max_batch_size", 0) > 0 else 0
        self.variable_axes = {
            tensor["name"]: [batched + i for i, d in enumerate(tensor["dims"]) if int(d) == -1]
            for tensor in config["input"]
        }
        self.shared, self.lengths, self.ranges, self.may_be_empty = {}, {}, {}, set()
        for key, value in parameters.items():
            try:
                self._read(key, value)
            except ValueError as error:
                raise ValueError(f"config parameter {key} = '{value}': {error}") from None

    def _read(self, key, value):
        if key.startswith(SHARED_AXIS):
            members = [item.rsplit(":", 1) for item in value.split(",")]
            self.shared[key] = [(name.strip(), int(axis)) for name, axis in members]
        elif key.startswith(MAX_LENGTH):
            self.lengths[key.removeprefix(MAX_LENGTH)] = int(value)
        elif key.startswith(VALID_RANGE):
            lowest, highest = (int(bound) for bound in value.split(","))
            self.ranges[key.removeprefix(VALID_RANGE)] = (lowest, highest)
        elif key.startswith(ALLOW_EMPTY) and value.strip() == "true":
            self.may_be_empty.add(key.removeprefix(ALLOW_EMPTY))

    def violation(self, feed):
        """The first rule `feed` ({input: array, batch axis first}) breaks, as the gateways word
        it; None when it keeps them all."""
        for key, members in sorted(self.shared.items()):
            lengths = [(name, feed[name].shape[axis]) for name, axis in members]
            for name, length in lengths[1:]:
                if length != lengths[0][1]:
                    return (
                        f"inputs '{lengths[0][0]}' and '{name}' disagree on the length of axis "
                        f"'{key.removeprefix(SHARED_AXIS)}': {lengths[0][1]} vs {length} "
                        f"(config parameter {key})"
                    )
        for name, array in feed.items():
            found = self._length_violation(name, array) or self._range_violation(name, array)
            if found:
                return found
        return None

    def _length_violation(self, name, array):
        for length in (array.shape[axis] for axis in self.variable_axes.get(name, ())):
            if length == 0 and name not in self.may_be_empty:
                return (
                    f"input '{name}': shape {list(array.shape)} has an empty axis, which the model "
                    f"does not accept (config parameter {ALLOW_EMPTY}{name})"
                )
            if length > self.lengths.get(name, length):
                return (
                    f"input '{name}': length {length} exceeds the model's maximum "
                    f"{self.lengths[name]} (config parameter {MAX_LENGTH}{name})"
                )
        return None

    def _range_violation(self, name, array):
        if name not in self.ranges or not array.size or array.dtype.kind not in "iu":
            return None
        lowest, highest = self.ranges[name]
        outside = np.flatnonzero((array < lowest) | (array > highest))
        if not outside.size:
            return None
        return (
            f"input '{name}': value {array.ravel()[outside[0]]} is outside the valid range "
            f"[{lowest}, {highest}] (config parameter {VALID_RANGE}{name})"
        )
