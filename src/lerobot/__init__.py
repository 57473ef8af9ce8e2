"""lerobot: from a robot, real or simulated, to a trained policy running on it."""

__version__ = "0.1.0"
