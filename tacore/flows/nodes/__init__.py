"""Node types: ``NodeBase`` and ``@register_node`` (user types), and the built-in ones (docs/flows.md)."""

from tacore.flows.nodes.base import LocalContext, NodeBase, NodeConfig, NodeContext, NodeFailed
from tacore.flows.nodes.registry import describe, node_type, node_types, register_node, run_node, validate_config

__all__ = ["LocalContext", "NodeBase", "NodeConfig", "NodeContext", "NodeFailed", "describe", "node_type",
           "node_types", "register_node", "run_node", "validate_config"]
