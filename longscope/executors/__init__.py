"""Where prepared work items run: in this process (local); each executor hands rows back to the driver."""
