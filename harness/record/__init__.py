"""A cell's record: typed, frozen, versioned; written and read here only.

The runner produces records (:func:`harness.evaluate`), the report reads them. On disk a record is
one JSON file (``<run>/cells/<cell>.json``), written atomically the moment its cell finishes, so a
worker that crashes later loses nothing already computed. :mod:`harness.record.cell` holds what
a record is, :mod:`harness.record.schema` what a sound one holds (checked as it is read),
:mod:`harness.record.files` how it is written and read, :mod:`harness.record.inputs`
what produced it.
"""

from harness.record.cell import (
    UNIFORM_GUESS,
    CellMetrics,
    CellRecord,
    Estimate,
    ItemEvidence,
    ItemRecord,
)
from harness.record.files import (
    ITEMS_MARK,
    file_stem,
    items_path,
    read_items,
    read_record,
    read_summary,
    record_parts,
    write_record,
)
from harness.record.inputs import input_changes, inputs_of
from harness.record.schema import SCHEMA_VERSION, SCORES, RecordError, RecordSchemaError

__all__ = [
    "ITEMS_MARK",
    "SCHEMA_VERSION",
    "SCORES",
    "UNIFORM_GUESS",
    "CellMetrics",
    "CellRecord",
    "Estimate",
    "ItemEvidence",
    "ItemRecord",
    "RecordError",
    "RecordSchemaError",
    "file_stem",
    "input_changes",
    "inputs_of",
    "items_path",
    "read_items",
    "read_record",
    "read_summary",
    "record_parts",
    "write_record",
]
