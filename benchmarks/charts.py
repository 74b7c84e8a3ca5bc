#!/usr/bin/env python3
"""Draws the PNG charts REPORT.md links, from results.json (both in benchmarks/results/).

    python3 benchmarks/charts.py [RESULTS_DIR]

The report and its numbers are written by the Swift benchmark; this script only draws them.
"""
import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FARM = "#2b6cb0"
FFMPEG = "#c05621"


def median(values):
    values = sorted(values)
    if not values:
        return 0.0
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def side(runs):
    return {
        "wall": median([r["wallSeconds"] for r in runs]),
        "cpu": median([r["userSeconds"] + r["systemSeconds"] + r.get("outsideCPUSeconds", 0) for r in runs]),
        "memory": median([r["peakMemoryKiB"] / 1024 for r in runs]),
    }


def bars(axis, labels, farm, ffmpeg, unit):
    positions = range(len(labels))
    width = 0.38
    axis.bar([p - width / 2 for p in positions], farm, width, label="farm", color=FARM)
    axis.bar([p + width / 2 for p in positions], ffmpeg, width, label="ffmpeg", color=FFMPEG)
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel(unit)
    axis.legend()


def ladder(result, folder):
    farm, ffmpeg = side(result["farm"]["runs"]), side(result["ffmpeg"]["runs"])
    rungs = result["rungs"]
    with_psnr = any(r.get("farmPSNR") is not None for r in rungs)
    columns = 4 if with_psnr else 3
    figure, axes = plt.subplots(1, columns, figsize=(4 * columns, 3.6))
    bars(axes[0], ["wall", "CPU"], [farm["wall"], farm["cpu"]], [ffmpeg["wall"], ffmpeg["cpu"]], "seconds")
    axes[0].set_title("time (median)")
    bars(axes[1], ["peak RSS"], [farm["memory"]], [ffmpeg["memory"]], "MiB")
    axes[1].set_title("memory (median)")
    names = [r["name"] for r in rungs]
    bars(axes[2], names, [r["farmBytes"] / 1e6 for r in rungs], [r["ffmpegBytes"] / 1e6 for r in rungs], "MB")
    axes[2].set_title("size per rung")
    if with_psnr:
        def finite(value):
            return value if value is not None and math.isfinite(value) else 0

        bars(axes[3], names, [finite(r["farmPSNR"]) for r in rungs], [finite(r["ffmpegPSNR"]) for r in rungs], "dB")
        lowest = min([finite(r["farmPSNR"]) for r in rungs] + [finite(r["ffmpegPSNR"]) for r in rungs])
        axes[3].set_ylim(bottom=max(0, lowest - 5))
        axes[3].set_title("PSNR-Y per rung")
    figure.suptitle(f"The ladder, {result['seconds']} s of 1080p30")
    figure.tight_layout()
    figure.savefig(folder / f"ladder-{result['seconds']}s.png", dpi=110)
    plt.close(figure)


def first_segment(result, folder):
    figure, axis = plt.subplots(figsize=(7, 2.8))
    names = ["farm", "ffmpeg"]
    walls = [result["farm"]["wall"], result["ffmpeg"]["wall"]]
    firsts = [result["farm"].get("firstPlayable") or walls[0], result["ffmpeg"].get("firstPlayable") or walls[1]]
    axis.barh(names, walls, color="#cbd5e0", label="whole job")
    axis.barh(names, firsts, color=[FARM, FFMPEG], label="first playable segment")
    axis.set_xlabel("seconds from start")
    axis.legend(loc="lower right")
    axis.set_title(f"Time to the first playable segment, {result['minutes']} min of {result['height']}p")
    figure.tight_layout()
    figure.savefig(folder / "first-segment.png", dpi=110)
    plt.close(figure)


def extraction(result, folder):
    figure, axis = plt.subplots(figsize=(5, 3.2))
    values = [median(result["firstRuns"]) * 1000, median(result["lastRuns"]) * 1000]
    axis.bar(
        [f"first (chunk {result['firstChunk'] + 1})", f"last (chunk {result['lastChunk'] + 1})"],
        values,
        color=[FARM, FARM],
    )
    axis.set_ylabel("milliseconds (median)")
    axis.set_title(f"Chunk extraction, {result['minutes']} min of {result['height']}p")
    figure.tight_layout()
    figure.savefig(folder / "extraction.png", dpi=110)
    plt.close(figure)


def main():
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "results")
    results = json.loads((folder / "results.json").read_text())
    for result in results.get("ladders", []):
        ladder(result, folder)
    if results.get("firstSegment"):
        first_segment(results["firstSegment"], folder)
    if results.get("extraction"):
        extraction(results["extraction"], folder)
    print(f"charts: wrote the PNGs in {folder}")


if __name__ == "__main__":
    main()
