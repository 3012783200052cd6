"""The decision audit trail: one versioned JSON record per guarded request (``record.py``),
written off the request path (``writer.py``), and read back by ``replay``, ``review`` and
``report``."""

from guardproxy.audit.record import (
    VERSION,
    AuditRecord,
    FindingRecord,
    GuardRecord,
    RecordError,
    ShadowRecord,
    TextRecord,
    parse_record,
)
from guardproxy.audit.trail import read_trail

__all__ = ["VERSION", "AuditRecord", "FindingRecord", "GuardRecord", "RecordError", "ShadowRecord", "TextRecord",
           "parse_record", "read_trail"]
