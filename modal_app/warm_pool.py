"""Raise or lower the warm pool of one deployed variant pool, without redeploying.

    python -m modal_app.warm_pool --variant lightning-8 --min-containers 1            # busy hours
    python -m modal_app.warm_pool --variant lightning-8 --min-containers 0            # back to scale-to-zero
    python -m modal_app.warm_pool --variant lightning-8 --buffer-containers 1 --class QwenGeneratorOffload

It calls `update_autoscaler` on the deployed class instance that serves the variant (the same `variant`/`rank`
parameters the worker uses), which "overrides the current autoscaler behavior for this Cls instance"; settings not
given keep their current value (modal `Obj.update_autoscaler`, https://modal.com/docs/reference/modal.Cls). The
override lasts until the next `modal deploy`, which restores the values of the decorator (TENKAIGEN_MODAL_* at
deploy time). Run it from cron (or any scheduler) to follow busy hours; docs/deploy.md ("Warm pool") shows a
crontab and what an idle warm container costs. Needs the same Modal credentials as the worker.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from modal_app import pins

APP_NAME = "tenkaigen-qwen"  # modal_app/qwen_generator.py APP_NAME; not imported, so no image is defined here


def warm_pool(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """The warm pool of each GPU pool, read when `modal deploy` imports this file (not by the worker).

    TENKAIGEN_MODAL_MIN_CONTAINERS keeps that many containers of each variant pool up at all times (billed idle);
    TENKAIGEN_MODAL_BUFFER_CONTAINERS keeps that many idle ones on top of the busy ones while the pool is active.
    Both default to 0 (scale to zero). To raise a pool for busy hours without redeploying, use
    `python -m modal_app.warm_pool` (docs/deploy.md, "Warm pool")."""
    pool = {"max_containers": int(environ.get("TENKAIGEN_MODAL_MAX_CONTAINERS", "4"))}
    for name, key in (("min_containers", "TENKAIGEN_MODAL_MIN_CONTAINERS"),
                      ("buffer_containers", "TENKAIGEN_MODAL_BUFFER_CONTAINERS")):
        value = int(environ.get(key, "0"))
        if value < 0:
            raise ValueError(f"{key}: {value} is negative; use 0 to scale to zero")
        if value:
            pool[name] = value
    return pool


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modal_app.warm_pool", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="lightning-8", help="the variant pool (default lightning-8)")
    parser.add_argument("--rank", type=int, default=pins.NUNCHAKU_DEFAULT_RANK, help="Nunchaku rank (32 or 128)")
    parser.add_argument("--class", dest="class_name", default="QwenGenerator",
                        help="QwenGenerator (L40S/A100) or QwenGeneratorOffload (A10/L4)")
    parser.add_argument("--app", default=APP_NAME, help=f"deployed app (default {APP_NAME})")
    parser.add_argument("--environment", default=None, help="Modal environment (default: the profile's)")
    parser.add_argument("--min-containers", type=int, default=None, help="containers kept up at all times")
    parser.add_argument("--buffer-containers", type=int, default=None, help="idle containers kept while busy")
    parser.add_argument("--max-containers", type=int, default=None, help="cap on containers")
    parser.add_argument("--scaledown-window", type=int, default=None, help="seconds an idle container stays up")
    args = parser.parse_args(argv)
    settings = autoscaler_settings(args)
    if not settings:
        parser.error("give at least one of --min-containers, --buffer-containers, --max-containers, "
                     "--scaledown-window")
    for name, value in settings.items():
        if value < 0:
            parser.error(f"--{name.replace('_', '-')}: {value} is negative")
    return args


def autoscaler_settings(args: argparse.Namespace) -> dict[str, int]:
    names = ("min_containers", "buffer_containers", "max_containers", "scaledown_window")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def apply(args: argparse.Namespace) -> Any:
    import modal

    cls = modal.Cls.from_name(args.app, args.class_name, environment_name=args.environment)
    return cls(variant=args.variant, rank=args.rank).update_autoscaler(**autoscaler_settings(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    apply(args)
    shown = ", ".join(f"{name}={value}" for name, value in autoscaler_settings(args).items())
    print(f"{args.app}/{args.class_name}(variant={args.variant}, rank={args.rank}): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
