"""Container images of a locked stack: pins in the lock, reproducible builds, verify, export."""
