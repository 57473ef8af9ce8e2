"""``lerobot-policy-server``: serve trained policies to robots on other machines (see :mod:`lerobot.async_inference.policy_server`).

    export LEROBOT_POLICY_SERVER_TOKEN=...   # python -c "import secrets; print(secrets.token_urlsafe(24))"
    lerobot-policy-server --policy.path=outputs/train/act/checkpoints/last/pretrained_model \\
        --host=0.0.0.0 --port=8080 [--policy.extra_paths='["outputs/other/pretrained_model"]'] [--policy.device=cuda]

A robot connects with ``lerobot-deploy ... --server_address=gpu-box:8080`` (same token in its
environment). The server binds 127.0.0.1 by default and refuses any other address without a token
unless ``--allow_unauthenticated=true``; every checkpoint it serves is named here at start-up.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from lerobot.async_inference import policy_server as server_lib
from lerobot.async_inference.transport import DEFAULT_MAX_MESSAGE_BYTES, TOKEN_ENV
from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.utils.cli import console_main
from lerobot.utils.net_security import check_exposure, resolve_token


@dataclass
class ServerPolicyConfig:
    path: str = ""
    """Checkpoint folder (``.../pretrained_model``), Hub id or lerobot-export folder: the default policy (required)."""
    extra_paths: list[str] = field(default_factory=list)
    """More checkpoints a client may choose by name (the path exactly as given here)."""
    device: str | None = None
    """Where the policies run (cuda, mps, cpu; default: where the checkpoint loads)."""
    rtc_config: RTCConfig | None = None
    """Real-time chunking for every served policy (--policy.rtc_config.execution_horizon=8); default: the checkpoint's."""
    backend: str = "auto"
    """torch (checkpoints), onnxruntime / torchscript / torch_export (lerobot-export folders); auto: by each path."""


@dataclass
class PolicyServerConfig:
    policy: ServerPolicyConfig = field(default_factory=ServerPolicyConfig)
    host: str = "127.0.0.1"
    """Interface to listen on; 0.0.0.0 for every interface (needs a token, see auth_token)."""
    port: int = 8080
    """TCP port to listen on (0: any free port, printed at start-up)."""
    auth_token: str | None = field(default=None, repr=False)
    """Shared secret clients must prove they know; better set $LEROBOT_POLICY_SERVER_TOKEN (not in ps)."""
    allow_unauthenticated: bool = False
    """Listen beyond 127.0.0.1 without a token (only on a network you fully trust)."""
    max_connections: int = 4
    """Clients served at once; more are told the server is busy."""
    max_message_mb: float = DEFAULT_MAX_MESSAGE_BYTES / 2**20
    """Largest message (an observation with its camera frames) a client may send, in MiB."""
    handshake_timeout_s: float = 5.0
    """A client must say hello (and answer the token challenge) within this many seconds."""
    idle_timeout_s: float = 60.0
    """A client that sends nothing for this long is disconnected."""
    cpu_acceleration: bool = True
    """On the CPU, swap in lerobot.policies.cpu_acceleration's faster modules (same math)."""


@console_main
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(args, __doc__, PolicyServerConfig):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(PolicyServerConfig, args)
    if not cfg.policy.path:
        raise ValueError("Choose the policy to serve: --policy.path=<checkpoint folder or Hub id>.")
    paths = list(dict.fromkeys([cfg.policy.path, *cfg.policy.extra_paths]))
    # Token and address are checked before anything is loaded: a refusal should not cost a model load.
    token = resolve_token(cfg.auth_token, TOKEN_ENV)
    if not cfg.allow_unauthenticated:  # (with it, the server below logs the warning once)
        check_exposure(cfg.host, token, False, "The policy server", TOKEN_ENV)
    policies = {
        path: server_lib.load_policy(
            path, cfg.policy.device, cfg.cpu_acceleration, cfg.policy.rtc_config, cfg.policy.backend
        )
        for path in paths
    }
    server = server_lib.PolicyServer(
        policies, cfg.host, cfg.port, token, cfg.allow_unauthenticated, cfg.max_connections,
        int(cfg.max_message_mb * 2**20), cfg.handshake_timeout_s, cfg.idle_timeout_s,
    )  # fmt: skip
    print(
        f"Policy server listening on {cfg.host}:{server.port} ({'token required' if token else 'no token'}; "
        f"serving {paths}; Ctrl-C to stop)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
