"""Triton's gRPC answers rendered as its HTTP API renders them (JSON), field for field.

Triton 2.51 writes a message's JSON with the proto's field names, every field without presence
printed (defaults and empty lists and maps included), 64-bit integers as numbers (protobuf's own
JSON writes them as strings, which `tritonclient.http` users do not expect), enums by name, and
messages or oneof members that are not set left out. Checked against tritonserver's own HTTP
answers for metadata, config and statistics (tests/gateway/test_kserve_http.py).
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def message_json(message: Message) -> dict[str, Any]:
    """The JSON object (as Python values) Triton's HTTP API writes for `message`: maps as
    objects, bytes fields as base64 strings, enums by name, 64-bit integers as ints."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {key: _value(value_field, item) for key, item in value.items()}
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [_value(field, item) for item in value]
        elif field.message_type is not None or field.containing_oneof is not None:
            if message.HasField(field.name):
                out[field.name] = _value(field, value)
        else:
            out[field.name] = _value(field, value)
    return out


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return message_json(value)
    if field.enum_type is not None:
        return field.enum_type.values_by_number[value].name
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value
