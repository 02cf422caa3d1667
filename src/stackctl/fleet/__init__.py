"""Fleets: one Ansible inventory, each host resolved to its own lock, one parallel run."""
