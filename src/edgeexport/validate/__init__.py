"""Validation: parity of every runtime against PyTorch, and the bundle with its report."""

from edgeexport.metrics import TOLERANCES, ErrorStats, Tolerance, error_stats
from edgeexport.validate.parity import ParityResult, check_runtime, decide_verdict

__all__ = ["TOLERANCES", "ErrorStats", "ParityResult", "Tolerance", "check_runtime",
           "decide_verdict", "error_stats"]
