"""Devices on the floor: handhelds and scanners, last seen and last read."""
