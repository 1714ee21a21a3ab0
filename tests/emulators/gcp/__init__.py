"""The GCE emulator driven only through google-cloud-compute (REST transport, real clients)."""
