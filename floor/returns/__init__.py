"""Returns inspection against the packing snapshot: return work orders with trace codes, what
came back compared with what was packed, immutable inspection reports."""
