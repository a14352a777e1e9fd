"""floor-sim: simulated pack-station devices and load generators for the floor service.

Modules:

- `orders`: synthetic orders (kits, EAN-13 barcodes, waybills) pushed through the REST API.
- `handheld`: a handheld over Socket.IO or over REST, and the pack behaviour of a packer.
- `load`: open-loop (Poisson) and closed-loop (saturation) load over many handhelds.
- `server`: start a throw-away `floor serve` for tests and benchmarks.
- `cli`: the `floor-sim` command.
"""

__version__ = "0.1.0"
