"""`pluginconf list`: the cases of a suite, the requirement coverage matrix, the targets."""

from __future__ import annotations

import argparse
import textwrap

from pluginconf.runner.cli.arguments import SUITES
from pluginconf.runner.cli.command import usage_error
from pluginconf.runner.model import Profile
from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.coverage import coverage, exemptions, mutants
from pluginconf.runner.reports.coverage import render as render_coverage
from pluginconf.runner.spec import requirements
from pluginconf.runner.targets import TARGETS


def run_list(args: argparse.Namespace) -> int:
    if args.coverage:
        return _list_coverage(args)
    if args.suite is None:
        return usage_error(
            "list",
            "which suite? Expected plugin, host or targets (or --coverage, for the "
            "requirement matrix of both suites)",
        )
    if args.suite == "targets":
        return _list_targets()
    texts = requirements()
    cases = load_cases(args.suite)
    if args.profile:
        cases = [c for c in cases if c.profile == Profile(args.profile)]
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="          ")
    for case in cases:
        print(f"{case.id}  {case.level}  {case.profile}" + ("  heavy" if case.heavy else ""))
        for rid in case.requirements:
            requirement = texts[rid]
            print(wrap.fill(f"{rid:<5} [{requirement.origin_label}] {requirement.text}"))
            if args.verbose and requirement.rationale:
                print(wrap.fill(f"      why: {requirement.rationale}"))
        if args.verbose:
            for name, text in (
                ("Purpose", case.description.purpose),
                ("Procedure", case.description.procedure),
                ("Asserts", case.description.asserts),
            ):
                print(
                    textwrap.fill(
                        f"{name}: {text}", 100, initial_indent="    ", subsequent_indent="      "
                    )
                )
    print(f"{len(cases)} case{'' if len(cases) == 1 else 's'}")
    return 0


def _list_coverage(args: argparse.Namespace) -> int:
    if args.suite == "targets" or args.profile:
        return usage_error(
            "list",
            "--coverage takes plugin, host or no suite (both), and no --profile: the "
            "matrix covers whole suites",
        )
    suites = (args.suite,) if args.suite else SUITES
    rows = []
    for suite in suites:
        rows.extend(coverage(suite, load_cases(suite), mutants(), exemptions()))
    print("\n".join(render_coverage(rows, verbose=args.verbose)))
    return 0


def _list_targets() -> int:
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
    for target in TARGETS:
        decisive = (
            "every rule"
            if not target.go_plugin_based
            else "+".join(sorted(str(o) for o in target.decisive))
        )
        print(f"{target.name}")
        print(wrap.fill(target.summary))
        print(f"    cookie: {target.magic_cookie}")
        print(f"    protocol versions: {','.join(map(str, target.protocol_versions))}")
        print(
            f"    profile: {target.profile}   AutoMTLS: {target.auto_mtls}   "
            f"protocol: {target.protocol}"
        )
        print(f"    decides the run: {decisive}")
        if target.env:
            print("    environment: " + " ".join(f"{k}={v}" for k, v in target.env))
        print(wrap.fill(f"source: {target.source}"))
    print(f"{len(TARGETS)} targets")
    return 0
