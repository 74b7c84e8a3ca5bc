# Entry points for developers and CI. `make run` transcodes a sample (or INPUT=file) on a local farm, one agent per core.

INPUT ?=
SAMPLE := out/sample.mp4
SWIFT_BUILD_FLAGS ?=
SWIFT_TEST_FLAGS ?=
FORMAT_PATHS := Package.swift Protocol Formats Media Verify Coordinator Agent AllInOne CLI Tests

.PHONY: all deps build run test mutants format clean bench bench-charts bench-scale

all: build

deps:
	bash deploy/install-deps.sh

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

# A 20 s 480p test pattern with a stereo tone, keyframes every 2 s.
$(SAMPLE):
	@mkdir -p $(dir $@)
	@echo "==> generating $@"
	ffmpeg -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=size=854x480:rate=25:duration=20 \
		-f lavfi -i sine=frequency=440:sample_rate=48000:duration=20 \
		-c:v libx264 -pix_fmt yuv420p -g 50 -c:a aac -ar 48000 -ac 2 -shortest $@

run: deps build $(if $(INPUT),,$(SAMPLE))
	@echo "==> transcoding $(or $(INPUT),$(SAMPLE)) into out/hls"
	.build/debug/farm transcode "$(or $(INPUT),$(SAMPLE))" -o out/hls
	@master=$$(ls out/hls/master.m3u8 2>/dev/null || ls out/hls/*.m3u8 2>/dev/null | head -n 1); \
	echo; \
	echo "Done. Play it with:"; \
	echo "  ffplay $${master:-out/hls/master.m3u8}"; \
	echo "or serve it and open it in a browser that plays HLS (Safari, Chromium):"; \
	echo "  python3 -m http.server -d out/hls 8000   # then http://127.0.0.1:8000/$${master##*/}"

# First FarmFormats alone, as a package with no libav in it (docs/ARCHITECTURE.md), then every test target.
test: deps
	bash deploy/formats-alone.sh
	SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" SWIFT_TEST_FLAGS="$(SWIFT_TEST_FLAGS)" bash deploy/test.sh

# Every mutation in mutants/ applied, built and run against the tests that must catch it (not part of `make test`).
mutants: deps
	bash deploy/mutants.sh

format:
	swift format --in-place --recursive $(FORMAT_PATHS)

clean:
	rm -rf out

# Side-by-side with plain ffmpeg, reported as ratios in benchmarks/results/REPORT.md with PNG charts (not part of
# `make test`). The farm is built in the benchmarks package's release build, so its libraries compile once.
# BENCH_ARGS="--quick" for a short run while developing (see benchmarks/README.md).
BENCH_ARGS ?=
# The busiest scale run is profiled (`perf record` of the coordinator), so the report shows where its time goes.
SCALE_FLAGS ?= --profile
BENCH_VENV := .build/bench-venv

bench:
	bash deploy/install-deps.sh linux-perf
	swift build -c release --package-path benchmarks --product farm
	swift build -c release --package-path benchmarks --product FarmBenchmarks
	swift build -c release --package-path benchmarks --product FarmScale
	FARM_BINARY=benchmarks/.build/release/farm benchmarks/.build/release/FarmScale $(SCALE_FLAGS)
	FARM_BINARY=benchmarks/.build/release/farm benchmarks/.build/release/FarmBenchmarks $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-charts

# The charts of the last `make bench`, redrawn from benchmarks/results/results.json (matplotlib in a venv).
bench-charts:
	@if ! cmp -s benchmarks/requirements.txt $(BENCH_VENV)/farm-requirements.txt; then \
		rm -rf $(BENCH_VENV) && python3 -m venv $(BENCH_VENV) && \
		$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt && \
		cp benchmarks/requirements.txt $(BENCH_VENV)/farm-requirements.txt; \
	fi
	$(BENCH_VENV)/bin/python benchmarks/charts.py

# The coordinator at scale alone: simulated agents (10, 100, 800 slots) against the real coordinator and PostgreSQL,
# and pgbench on the same statements; writes benchmarks/results/scale.{json,md}, which the report includes.
# SCALE_FLAGS=--quick for a short run.
bench-scale:
	bash deploy/install-deps.sh linux-perf
	swift build -c release --package-path benchmarks --product farm
	swift build -c release --package-path benchmarks --product FarmScale
	FARM_BINARY=benchmarks/.build/release/farm benchmarks/.build/release/FarmScale $(SCALE_FLAGS)
