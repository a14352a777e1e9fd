"""CCTV evidence: cameras bound to stations, their recordings, and every scan mapped to the
exact frame that shows it."""
