"""The ``closedloop`` command: the demo, the campaign runs, the lab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from closedloop import __version__

DEMO_DIR = Path("data/demo")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return args.func(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closedloop",
        description="Closed-loop marketing analytics: Plan, Do, Check, Act — one report per campaign.",
    )
    parser.add_argument("--version", action="version", version=f"closedloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="build the demo retailer (if needed) and report on its campaign"
    )
    demo.add_argument(
        "--data", type=Path, default=DEMO_DIR, help="demo folder (default: data/demo)"
    )
    demo.add_argument(
        "--rebuild", action="store_true", help="rebuild the demo data even if present"
    )
    demo.set_defaults(func=_demo)

    data = sub.add_parser("make-demo", help="write the demo data set (CSV + plan.yaml) to a folder")
    data.add_argument("--out", type=Path, default=DEMO_DIR, help="folder (default: data/demo)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--customers", type=int, default=20_000, help="number of customers")
    data.set_defaults(func=_make_demo)
    return parser


def _make_demo(args) -> int:
    from closedloop.datasets import write_demo

    folder = write_demo(args.out, seed=args.seed, n_customers=args.customers)
    _print_summary(folder)
    return 0


def _demo(args) -> int:
    from closedloop.datasets import write_demo

    folder = args.data
    if args.rebuild or not (folder / "plan.yaml").exists():
        print(f"building the demo retailer in {folder} ...", flush=True)
        write_demo(folder)
    _print_summary(folder)
    return 0


def _print_summary(folder: Path) -> None:
    from closedloop import io

    tx = io.read_transactions(folder / "transactions.csv")
    customers = io.read_customers(folder / "customers.csv")
    assignments = io.read_assignments(folder / "assignments.csv")
    events = io.read_events(folder / "events.csv")
    q = tx.attrs["quality"]
    arms = assignments["arm"].value_counts().sort_index()
    print(f"demo retailer in {folder}/")
    print(
        f"  customers     {len(customers):>9,}   members {customers['is_member'].mean():.0%},"
        f" reachable online {customers['online'].mean():.0%}"
    )
    print(
        f"  transactions  {len(tx):>9,}   {q['date_min']} to {q['date_max']},"
        f" revenue {tx['amount'].sum():,.0f}, average ticket {tx['amount'].mean():.2f}"
    )
    print(
        f"  campaign      {len(assignments):>9,}   "
        + ", ".join(f"{a} {n:,}" for a, n in arms.items())
    )
    print(f"  funnel events {len(events):>9,}   stages " + " → ".join(events["stage"].unique()))
    print(f"  plan          {folder / 'plan.yaml'}")


if __name__ == "__main__":
    sys.exit(main())
