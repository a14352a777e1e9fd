"""The live floor: micro-status push with catch-up by seq, the supervisor board, alerts."""
