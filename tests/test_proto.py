"""The checked-in protobuf code is the one ``make proto`` generates from dm.proto."""

from __future__ import annotations

import re
from pathlib import Path

from bilicrawl.proto import dm_pb2

PROTO = Path(dm_pb2.__file__).with_name("dm.proto").read_text(encoding="utf-8")


def declared_fields() -> dict[str, dict[str, int]]:
    """Every message of dm.proto with its fields' numbers, read off the text."""
    messages = {}
    for name, body in re.findall(r"message (\w+)\s*\{(.*?)\n?\}", PROTO, re.DOTALL):
        fields = re.findall(r"(?:^|[;{\s])(?:repeated\s+)?[\w.<>, ]+?\s(\w+)\s*=\s*(\d+);", body)
        messages[name] = {field: int(number) for field, number in fields}
    return messages


def test_every_message_and_field_of_the_proto_is_generated() -> None:
    declared = declared_fields()
    generated = dm_pb2.DESCRIPTOR.message_types_by_name
    assert set(declared) == set(generated)
    for name, fields in declared.items():
        assert {f.name: f.number for f in generated[name].fields} == fields, name
