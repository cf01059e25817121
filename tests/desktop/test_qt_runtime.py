"""The Qt binding itself must survive a long session.

PySide6 6.12.0's ``SignalInstance.emit`` returns ``True`` without taking a reference: each emit
lowers ``True``'s reference count by one, and after a few thousand emits (a dropped folder of
2,000 images was enough) Python aborts with "bool_dealloc: deallocating True or False". The
lock pins a release without that fault; this test fails on one that has it.
"""
import sys

from PySide6.QtCore import QObject, Signal


class _Sender(QObject):
    happened = Signal(str)


def test_emitting_a_signal_many_times_does_not_eat_references_to_true():
    sender = _Sender()
    received = []
    sender.happened.connect(received.append)
    before = sys.getrefcount(True)
    for _ in range(200):
        sender.happened.emit("row done")
    assert len(received) == 200
    assert abs(sys.getrefcount(True) - before) < 50
