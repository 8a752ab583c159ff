"""effeval's standardized result JSON (``effeval/result/v1``): schema, writer, converters."""

from effeval.results.schema import SCHEMA_ID, load_schema, validate_result
from effeval.results.writer import write_json_atomic, write_result

__all__ = ["SCHEMA_ID", "load_schema", "validate_result", "write_json_atomic", "write_result"]
