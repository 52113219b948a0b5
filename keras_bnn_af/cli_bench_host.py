"""`keras-bnn-af bench --device host`: latency in LCE's Python interpreter here.

```
keras-bnn-af bench m.tflite                              # fastest kernels
keras-bnn-af bench m.tflite --compare m_float32.tflite   # interleaved, with control
```

`--compare` times A and B side by side (`compare_latency`): one kernel
configuration for both (A's fastest), `--rounds` interleaved rounds of `--runs`
inferences, and A again at the end of every round as an A-vs-A control, whose
range over rounds is the noise floor of the B/A ratio.
"""

import argparse
import json
import platform

from keras_bnn_af._cli_options import check_new_output_file

#: Interleaved rounds and runs per round of `--compare` on the host.
HOST_ROUNDS, HOST_RUNS = 7, 20


def bench_host(args: argparse.Namespace, device_only: list[str]) -> int:
    """Runs `bench` on this host; `device_only` are the device options given."""
    if args.compare is not None:
        device_only = [flag for flag in device_only if flag != "--rounds"]
    if device_only:
        raise ValueError(
            f"{', '.join(device_only)} need(s) a device, and --device is host. "
            "Expected: --device local, ssh://user@host[:port] or adb[:SERIAL] with "
            "those options. Fix: add --device local to run LCE's interpreter on this "
            "host through the benchmark binary's twin, or drop them."
        )
    check_new_output_file(args.json, "--json", overwrite=args.overwrite)
    run = _compare if args.compare is not None else _single
    results = [run(args, threads) for threads in args.threads]
    if _is_x86():
        from keras_bnn_af.benchmarks.bench_report import X86_NOTE

        print(f"Note: {X86_NOTE}")
    if args.json:
        data = results[0] if len(results) == 1 else results
        args.json.write_text(json.dumps(data, indent=2))
    return 0


def _single(args: argparse.Namespace, threads: int) -> dict:
    from keras_bnn_af.benchmarks import benchmark_tflite

    result = benchmark_tflite(
        args.tflite,
        threads=threads,
        runs=args.runs or 30,
        kernel=args.kernel,
        progress=True,
    )
    for kernel, median in result.candidates_median_ms.items():
        print(f"  {kernel:<24} {median:9.3f} ms (trial median)")
    print(
        f"{result.model}: {result.median_ms:.3f} ms median, {result.p90_ms:.3f} "
        f"ms p90 over {result.runs} runs, kernel {result.kernel}, "
        f"{result.threads} thread(s)"
    )
    return result.to_json()


def _compare(args: argparse.Namespace, threads: int) -> dict:
    from keras_bnn_af.benchmarks import compare_latency, latency_ratios

    rounds, runs = args.rounds or HOST_ROUNDS, args.runs or HOST_RUNS
    timed = compare_latency(
        {"A": args.tflite, "B": args.compare},
        threads=threads,
        rounds=rounds,
        runs=runs,
        kernel=args.kernel,
        control=True,
        progress=True,
    )
    ratios = latency_ratios(timed)
    names = {"A": args.tflite.name, "B": args.compare.name}
    names["A (control)"] = f"{args.tflite.name} (A again, control)"
    print(
        f"{threads} thread(s), kernel {timed['A'].kernel} for both, {rounds} "
        f"interleaved rounds of {runs} runs; ratio to A per round, median (range):"
    )
    for role, result in timed.items():
        ratio = ratios[role]
        print(
            f"  {role:<12} {names[role]:<40} {result.median_ms:9.3f} ms  "
            f"{ratio.median:.3f}x ({ratio.low:.3f}-{ratio.high:.3f})"
        )
    return {
        "threads": threads,
        "files": {"A": str(args.tflite), "B": str(args.compare)},
        "results": {role: result.to_json() for role, result in timed.items()},
        "ratios_to_a": {role: ratio.to_json() for role, ratio in ratios.items()},
    }


def _is_x86() -> bool:
    from keras_bnn_af.benchmarks.bench_report import is_x86

    return is_x86({"arch": platform.machine()})
