"""floor-sim: simulated pack-station devices and load generators for the floor service.

Modules:

- `orders`: synthetic orders (kits, EAN-13 barcodes, waybills) pushed through the REST API.
- `handheld`: a handheld over Socket.IO or over REST, and the pack behaviour of a packer.
- `serial_port`: a serial scanner's line, a pty pair behind a stable symlink.
- `serial_scanner`: a serial scanner as a device: registered through the API, its verdicts
  heard on its station's Socket.IO room.
- `faults`: injected faults (wrong item, missing line, Wi-Fi drop, unplug, garbage, ...) and
  the verdicts they must get.
- `load`: open-loop (Poisson), closed-loop (saturation) and paced (human) load over many
  devices; a whole shift.
- `audit`: the service's record of a shift's orders against the simulator's truth (escaped
  mistakes, lost and duplicated scans).
- `server`: start a throw-away `floor serve` for tests and benchmarks.
- `cli`: the `floor-sim` command.
"""

__version__ = "0.1.0"
