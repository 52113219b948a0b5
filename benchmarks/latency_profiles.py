"""Fit the ARM latency profiles (rpi4b, pixel1, m1) to LCE's published latencies.

    python benchmarks/latency_profiles.py

Each profile is the `host` profile (benchmarks/latency_model.py) with its
coefficients scaled per feature group (`LatencyModel.calibrate`) so that it
reproduces LCE's published single-image latencies of QuickNetSmall, QuickNet
and QuickNetLarge at 224x224 on that device (1 and 4 threads; the table is in
`PUBLISHED`). Three points per device and thread count support few
parameters: for 1 scale (everything) and 2 scales (binary work, the rest) the
script prints the leave-one-out errors (calibrate on two nets, predict the
third) and keeps the number of scales with the smaller worst leave-one-out
error (1 on a tie). Only that table fits a profile; `CHECKS` (other published
latencies) are predicted afterwards and printed beside their published value.

QuickNet features are those of the latest run in
benchmarks/results/latency_samples.jsonl. Writes keras_bnn_af/latency/
profiles/{rpi4b,pixel1,m1}.json, benchmarks/results/latency_profiles.json and
docs/latency_profiles.md.
"""

import json
import sys
from pathlib import Path

from keras_bnn_af.latency import LatencyModel, LatencySample, graph_features
from keras_bnn_af.latency.model import PROFILES_DIR

ROOT = Path(__file__).resolve().parent
SAMPLES = ROOT / "results" / "latency_samples.jsonl"
SOURCE = (
    "larq/compute-engine README: Pixel 1 (2021-06), Mac mini M1 (2021-06), "
    "Raspberry Pi 4B (2022-04), single image, ms"
)
QUICKNETS = ("quicknet_small", "quicknet", "quicknet_large")
#: (device, threads) -> QuickNetSmall, QuickNet, QuickNetLarge in ms.
PUBLISHED = {
    ("rpi4b", 1): (27.7, 45.0, 77.0),
    ("pixel1", 1): (16.8, 25.5, 44.2),
    ("m1", 1): (4.0, 5.8, 9.9),
    ("rpi4b", 4): (12.1, 20.8, 31.7),
    ("pixel1", 4): (8.9, 12.6, 22.8),
    ("m1", 4): (1.8, 2.5, 3.9),
}
DEVICES = {
    "rpi4b": "Raspberry Pi 4 Model B (Cortex-A72), 64-bit OS",
    "pixel1": "Google Pixel 1 (Snapdragon 821)",
    "m1": "Mac mini M1 (arm64, LCE's macOS arm64 kernels)",
}
#: Published latencies that check a profile, never fit it.
CHECKS = {
    ("pixel1", "birealnet"): (
        41.6,
        "Bi-RealNet on Pixel 1 (same README; threads not stated, compared with "
        "the 1-thread prediction)",
    ),
}


def main(argv=None) -> int:
    host = LatencyModel.load("host")
    features = _quicknet_features()
    result = {"source": SOURCE, "devices": {}}
    for device, description in DEVICES.items():
        entry = fit_device(host, features, device, description)
        result["devices"][device] = entry
    result["checks"] = run_checks(result)
    (ROOT / "results" / "latency_profiles.json").write_text(
        json.dumps(result, indent=1) + "\n"
    )
    text = render(result)
    (ROOT.parent / "docs" / "latency_profiles.md").write_text(text)
    print(text)
    return 0


def _quicknet_features() -> dict[str, dict]:
    rows = [json.loads(line) for line in SAMPLES.read_text().splitlines()]
    last = rows[-1]["run"]
    return {
        row["name"]: row["features"]
        for row in rows
        if row["run"] == last and row["name"] in QUICKNETS
    }


def fit_device(host, features, device: str, description: str) -> dict:
    entry = {"description": description, "threads": {}}
    coefficients, errors = {}, {}
    for threads in (1, 4):
        samples = [
            LatencySample(name, features[name], threads, ms)
            for name, ms in zip(QUICKNETS, PUBLISHED[device, threads], strict=True)
        ]
        loo = {groups: leave_one_out(host, samples, groups) for groups in (1, 2)}
        worst = {
            groups: max(abs(e) for e in errors_) for groups, errors_ in loo.items()
        }
        groups = 2 if worst[2] < worst[1] else 1
        fitted = host.calibrate(samples, name=device, groups=groups, base_threads=1)
        coefficients[threads] = fitted.coefficients[threads]
        errors[threads] = {
            **fitted.fit_error[threads],
            "groups": groups,
            "leave_one_out": {str(g): [round(e, 4) for e in v] for g, v in loo.items()},
        }
        entry["threads"][threads] = errors[threads]
    rests_on = (
        f"{description}: the host profile's coefficients scaled per feature group "
        f"to LCE's published QuickNetSmall / QuickNet / QuickNetLarge latencies "
        f"({SOURCE}); scales and leave-one-out errors per thread count in "
        "fit_error (docs/latency_profiles.md). Three nets of one family: "
        "relative costs between op kinds are the x86 host's, only the device-level "
        "scales are the device's."
    )
    model = LatencyModel(
        device,
        coefficients,
        {"device": device, "description": description},
        errors,
        rests_on,
    )
    model.save(PROFILES_DIR / f"{device}.json")
    return entry


def leave_one_out(host, samples, groups: int) -> list[float]:
    """Relative error on each net when calibrating on the other two."""
    errors = []
    for left_out in range(len(samples)):
        rest = [s for i, s in enumerate(samples) if i != left_out]
        fitted = host.calibrate(rest, name="loo", groups=groups, base_threads=1)
        sample = samples[left_out]
        predicted = fitted.predict_features(sample.features, sample.threads)
        errors.append(predicted / sample.latency_ms - 1.0)
    return errors


def run_checks(result: dict) -> list[dict]:
    import larq_zoo as lqz

    from keras_bnn_af.latency.corpus import convert

    checks = []
    for (device, model_name), (published, what) in CHECKS.items():
        net = lqz.literature.BiRealNet(weights=None, input_shape=(224, 224, 3))
        predicted = LatencyModel.load(device).predict_features(
            graph_features(convert(net)), 1
        )
        checks.append(
            {
                "device": device,
                "model": model_name,
                "published_ms": published,
                "predicted_ms": round(predicted, 2),
                "error": round(predicted / published - 1, 4),
                "what": what,
            }
        )
        print(checks[-1], file=sys.stderr)
    return checks


def render(result: dict) -> str:
    lines = [
        "# ARM latency profiles",
        "",
        "Generated by `python benchmarks/latency_profiles.py`. Each profile scales "
        "the `host` profile's coefficients (fitted on this x86 host, "
        "docs/latency_model.md) by one or two device-level factors fitted to LCE's "
        f"published QuickNet latencies ({result['source']}). Leave-one-out: "
        "calibrate on two of the three QuickNets, predict the third; the number of "
        "scales kept is the one with the smaller worst leave-one-out error. The "
        "relative costs of op kinds stay those measured on x86, so a profile is a "
        "first estimate for ranking models on the device; calibrate it on your "
        "own device's runs (`LatencyModel.calibrate`) for more.",
        "",
        "| profile | threads | scales kept | fit error (3 nets) | leave-one-out, "
        "1 scale | leave-one-out, 2 scales |",
        "|---|---|---|---|---|---|",
    ]
    for device, entry in result["devices"].items():
        for threads, fit in entry["threads"].items():
            loo = fit["leave_one_out"]
            lines.append(
                f"| {device} | {threads} | {fit['groups']} "
                f"| {fit['median_abs_error']:.1%} median | {_errors(loo['1'])} "
                f"| {_errors(loo['2'])} |"
            )
    if result["checks"]:
        lines += ["", "Checks (never fitted):", ""]
        for check in result["checks"]:
            lines.append(
                f"- {check['what']}: published {check['published_ms']} ms, "
                f"predicted {check['predicted_ms']} ms ({check['error']:+.0%})."
            )
    return "\n".join(lines) + "\n"


def _errors(values) -> str:
    return (
        ", ".join(f"{v:+.0%}" for v in values) + f" (worst {max(map(abs, values)):.0%})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
