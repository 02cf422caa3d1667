"""Engine adapters: how to build an engine and spell its command line, per pinned version."""
