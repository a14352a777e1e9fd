"""Returns inspection against the packing snapshot.

Empty for now: the returns work (inspection, trace codes, evidence) builds on the kit snapshots
and scan records of `floor.packing` and `floor.scan`.
"""
