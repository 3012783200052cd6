from guardproxy.engine.redaction import Redaction, redact_spans


def test_non_overlapping_spans() -> None:
    spans = [Redaction(12, 15, "[N]"), Redaction(5, 8, "[N]")]
    assert redact_spans("call 555 or 777 now", spans) == "call [N] or [N] now"


def test_overlapping_spans_merge_and_longest_replacement_wins() -> None:
    text = "Jane Doe lives here"
    assert redact_spans(text, [Redaction(0, 4, "[FIRST]"), Redaction(0, 8, "[PERSON]")]) == "[PERSON] lives here"
    assert redact_spans(text, [Redaction(0, 6, "[A]"), Redaction(5, 14, "[B]")]) == "[B] here"


def test_no_spans_and_whole_text() -> None:
    assert redact_spans("abc", []) == "abc"
    assert redact_spans("abc", [Redaction(0, 3, "")]) == ""
