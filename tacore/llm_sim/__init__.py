"""TACore's LLM simulator: an OpenAI-compatible Chat Completions server that answers deterministically.

``tacore llm-sim`` serves ``POST /v1/chat/completions`` and ``GET /v1/models`` in OpenAI's exact response
and error formats (JSON mode and streaming included), answering an ``analyze.stock`` prompt from the
technical summary it carries; ``/_sim/faults`` injects what real endpoints do (429 with Retry-After,
500/503, slow replies, invalid JSON content once or always). See docs/analytics.md.
"""

from tacore.llm_sim.faults import Fault, FaultKind
from tacore.llm_sim.server import LLMSimulator

__all__ = ["Fault", "FaultKind", "LLMSimulator"]
