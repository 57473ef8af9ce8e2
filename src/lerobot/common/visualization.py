"""``lerobot.common.visualization.visualize_episode``: the import path older LeRobot guides use."""

from lerobot.datasets.visualize import visualize_episode

__all__ = ["visualize_episode"]
