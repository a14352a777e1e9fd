"""A simulated serial scanner on a pty pair.

The service opens the slave side through pyserial, by a stable path: a symlink the simulator
keeps pointing at the current pty, the way udev's /dev/serial/by-id links point at the current
/dev/ttyUSBn. The simulator writes what a scanner sends on the master side. Unplugging closes
the master (the service's read fails, as with a pulled USB cable) and removes the link;
replugging makes a new pty behind the same link.
"""
from __future__ import annotations

import os
import tty
from pathlib import Path

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}


class PtyScanner:
    def __init__(self, link: str | os.PathLike[str], terminator: str = "CR") -> None:
        self.link = Path(link)
        self.terminator = TERMINATORS[terminator]
        self.master: int | None = None
        self.tty_name: str | None = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> "PtyScanner":
        if self.master is not None:
            return self
        master, slave = os.openpty()
        # Raw from the start: no CR->LF translation, no echo, even before the service opens it.
        tty.setraw(slave)
        self.tty_name = os.ttyname(slave)
        os.close(slave)
        self.master = master
        tmp = self.link.with_name(self.link.name + ".tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self.tty_name, tmp)
        os.replace(tmp, self.link)
        return self

    def unplug(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self.link.is_symlink():
            self.link.unlink()

    def write_raw(self, data: bytes) -> None:
        if self.master is None:
            raise OSError("the scanner is unplugged")
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def scan(self, code: str | bytes) -> None:
        """One read: the code and the scanner's suffix."""
        data = code.encode("utf-8") if isinstance(code, str) else code
        self.write_raw(data + self.terminator)

    def drain(self) -> bytes:
        """Whatever the service wrote back (nothing, for a scanner); keeps the pty from filling."""
        if self.master is None:
            return b""
        os.set_blocking(self.master, False)
        try:
            return os.read(self.master, 65536)
        except (BlockingIOError, OSError):
            return b""
        finally:
            os.set_blocking(self.master, True)

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> "PtyScanner":
        return self.plug()

    def __exit__(self, *exc: object) -> None:
        self.close()
