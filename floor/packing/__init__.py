"""Packing: orders, waves, frozen kit snapshots, pack sessions, micro-statuses."""
