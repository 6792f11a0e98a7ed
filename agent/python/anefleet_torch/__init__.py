"""The worker of anefleet's `torch` backend (see worker.py); the agent embeds and starts it."""
