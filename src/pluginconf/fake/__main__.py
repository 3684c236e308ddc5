"""python -m pluginconf.fake [--check] SCENARIO.json: run the fake plugin the scenario describes.

The scenario is validated before anything heavy is imported: a bad one exits 2 at once, with
the problem on stderr and nothing on stdout.
"""

import sys

from pluginconf.fake.scenario.load import load_from_argv


def main() -> None:
    scenario = load_from_argv(sys.argv[1:])  # exits 2 on a bad scenario, 0 after --check
    from pluginconf.fake.process import run  # gRPC and the SDK: only for a usable scenario

    run(scenario)


if __name__ == "__main__":
    main()
