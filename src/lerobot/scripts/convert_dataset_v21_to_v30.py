"""``python -m lerobot.scripts.convert_dataset_v21_to_v30``: the reference's module path for the converter.

Kept so commands from the LeRobot docs work; it is the same program as ``lerobot-convert-dataset``.
"""

from lerobot.scripts.convert_dataset import main

if __name__ == "__main__":
    raise SystemExit(main())
