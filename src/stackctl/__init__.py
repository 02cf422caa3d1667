"""stackctl: compile hardware + intent into a locked local-LLM inference stack."""

__version__ = "0.1.0"
