"""Where planned samples run: in this process (local)."""
