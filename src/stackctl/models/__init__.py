"""Pydantic contracts between stages: data only, no I/O."""
