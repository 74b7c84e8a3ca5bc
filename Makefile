# Entry points for developers and CI. `make run` transcodes a sample (or INPUT=file) on a local farm with two agents.

INPUT ?=
SAMPLE := out/sample.mp4
SWIFT_BUILD_FLAGS ?=
SWIFT_TEST_FLAGS ?=
FORMAT_PATHS := Package.swift Protocol Formats Media Verify Coordinator Agent AllInOne CLI Tests

.PHONY: all deps build run test mutants format clean bench bench-scale

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
	@echo "==> transcoding $(or $(INPUT),$(SAMPLE)) into out/hls with 2 agents"
	.build/debug/farm transcode "$(or $(INPUT),$(SAMPLE))" -o out/hls --agents 2
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

# Side-by-side with plain ffmpeg, reported as a ratio (not part of `make test`).
bench: deps
	swift build -c release
	swift run -c release --package-path benchmarks FarmBenchmarks

# The coordinator at scale: simulated agents (10, 100, 800 slots) against the real coordinator and PostgreSQL, and
# pgbench on the same statements; writes benchmarks/results/scale.{json,md}. SCALE_FLAGS=--quick for a short run.
SCALE_FLAGS ?=
bench-scale: deps
	swift build -c release --product farm
	swift run -c release --package-path benchmarks FarmScale $(SCALE_FLAGS)
