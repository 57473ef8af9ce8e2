"""Errors shared by every device (robots, teleoperators, cameras, motor buses).

Both derive from ``ConnectionError`` so callers that only care about "the device is not usable" can catch
one built-in type, while tests and scripts can still tell the two situations apart.
"""


class DeviceNotConnectedError(ConnectionError):
    """An operation needs an open connection, but ``connect()`` was not called (or failed)."""


class DeviceAlreadyConnectedError(ConnectionError):
    """``connect()`` was called on a device that is already connected."""
