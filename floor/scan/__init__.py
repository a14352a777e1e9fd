"""Scanning: the one normaliser, the scan use case, REST and Socket.IO entry points."""
