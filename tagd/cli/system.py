"""`tagd doctor` and `tagd install-udev`: make a Linux machine ready for a reader."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("doctor", help="check permissions, kernel modules, pcscd, udev rules, config, ports, core")
    d.add_argument("--root", default="/", help="check a system mounted here instead of this one")
    d.add_argument("--config", metavar="FILE")
    d.add_argument("--user", metavar="NAME", help="check serial access for this user (default: you, or "
                   "the user who ran sudo)")
    d.set_defaults(func=cmd_doctor)
    u = sub.add_parser("install-udev", help="install udev rules, the pn533 blacklist and the systemd unit")
    u.add_argument("--dry-run", action="store_true", help="only say what would be installed")
    u.add_argument("--root", default="/", help="install under this directory instead of /")
    u.set_defaults(func=cmd_install_udev)


def cmd_doctor(args: argparse.Namespace) -> int:
    from tagd.doctor import System, report, run_checks

    system = System(root=args.root, user=args.user) if args.user else System(root=args.root)
    return report(run_checks(system, args.config))


def cmd_install_udev(args: argparse.Namespace) -> int:
    from tagd.system_files import install

    try:
        return install(args.root, args.dry_run)
    except (OSError, FileNotFoundError) as exc:
        print(f"tagd install-udev: {exc}", file=sys.stderr)
        return 1
