"""``python -m benchmarks [augment] [train] [accuracy] [live] [recipe] [--quick] [--rescore]``: run and print them.

With no names all but ``recipe`` run. Each prints a Markdown table, the time it took and the machine's
load average before and after (other processes sharing the CPU slow both recipes alike, but
make the absolute numbers noisy).
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

from benchmarks import BENCHMARKS, DEFAULT, common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run, any of {', '.join(BENCHMARKS)} (default: {' '.join(DEFAULT)})")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes: checks that everything runs; the numbers mean nothing")
    parser.add_argument("--rescore", action="store_true",
                        help="recipe: train nothing; score the recorded runs again from their stored predictions")
    parser.add_argument("--data-dir", help="ISBI 2012 folder (default: UNET_DATA_DIR or the cache)")
    parser.add_argument("--verbose", type=int, default=0, help="model.fit verbosity (0, 1, 2)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.data_dir:
        os.environ["UNET_DATA_DIR"] = args.data_dir
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    info = common.machine()
    print(f"# benchmarks{' (quick: not a measurement)' if args.quick else ''}")
    print(f"CPU: {info['cpu']} · {info['cores']} cores · GPU: {info['gpu']} · "
          f"Python {info['python']} · Keras {info['keras']} on {info['backend']} "
          f"{info.get('tensorflow') or info.get('jax')}")
    for name in args.names or DEFAULT:
        module = importlib.import_module(f"benchmarks.{name}")
        before, start = common.load_average(), time.perf_counter()
        kwargs = {"verbose": args.verbose} if name == "accuracy" else {}
        kwargs = {"rescore": True} if name == "recipe" and args.rescore else kwargs
        table = module.run(quick=args.quick, **kwargs)
        print(f"\n## {name}\n")
        print(common.markdown(table))
        print(f"\n{time.perf_counter() - start:.0f} s · load average (1, 5, 15 min) before "
              f"{before}, after {common.load_average()}", flush=True)


if __name__ == "__main__":
    main()
