"""The robot client's command line: ``lerobot-deploy`` against a remote policy server, reference spelling.

    python -m lerobot.scripts.robot_client --robot.type=so100_follower --robot.port=/dev/ttyACM0 \\
        --server_address=gpu-box:8080 [--pretrained_name_or_path=<one of the server's policies>]

The control loop itself is :class:`lerobot.async_inference.robot_client.RobotClient`.
"""

from __future__ import annotations

import sys

from lerobot.scripts.deploy import main as deploy_main
from lerobot.utils.cli import console_main


@console_main
def main(argv: list[str] | None = None) -> int:
    """``python -m lerobot.scripts.robot_client --robot.type=... --server_address=host:port``.

    ``lerobot-deploy`` against a policy server (same flags, ``--help`` lists them): the token comes from
    ``$LEROBOT_POLICY_SERVER_TOKEN`` (or ``--auth_token``), ``--server_policy`` picks one of the server's
    policies and ``--pretrained_name_or_path`` is accepted as the reference's spelling of it.
    """
    args = sys.argv[1:] if argv is None else argv
    args = [a.replace("--pretrained_name_or_path", "--server_policy", 1) for a in args]
    flags = {a.split("=", 1)[0].lstrip("-").replace("-", "_") for a in args}
    if not flags & {"h", "help", "server_address"}:
        raise ValueError("The robot client needs a policy server: --server_address=host:port.")
    return deploy_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
