"""Request and answer JSON: fast, and never changed by the parser."""

from __future__ import annotations

import json

import pytest

from guardproxy import json_codec


def test_long_integers_survive_a_round_trip() -> None:
    body = b'{"seed": 123456789012345678901234567890, "n": 18446744073709551616, "small": 7}'
    value = json_codec.loads(body)
    assert value["seed"] == 123456789012345678901234567890 and isinstance(value["n"], int)
    assert json.loads(json_codec.dumps(value)) == value


def test_non_ascii_is_written_as_itself_and_compact() -> None:
    assert json_codec.dumps({"text": "héllo 🙂", "a": [1, 2]}) == '{"text":"héllo 🙂","a":[1,2]}'.encode()


@pytest.mark.parametrize("body", [b"{nope", b"", b"\xff\xfe", b'{"a": 1,}'])
def test_invalid_bodies_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        json_codec.loads(body)
