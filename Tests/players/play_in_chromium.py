#!/usr/bin/env python3
"""Plays an HLS folder's master playlist to the end in headless Chromium and checks what the player saw.

The folder and a small page holding `<video src="master.m3u8" muted autoplay>` are served over HTTP on loopback;
the page reports the video element's events back to the same server (`/report?...`). The check passes when the
video ends with `currentTime` at its duration, the duration is the expected one, and pictures (and, with
`--expect-audio`, sound) were decoded. On a media error the code and message Chromium gives are printed.

    play_in_chromium.py HLS_FOLDER --duration 8 [--expect-audio] [--chromium chromium]
    play_in_chromium.py HLS_FOLDER --until-playing 1   # a job still running: pass once 1 s has played

Playlists are served with `Cache-Control: no-cache`, so the player sees a growing EVENT playlist's new segments.

Exits 0 on success, 1 on a failed check (the reason on standard error), 2 on a usage error.
"""

import argparse
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>farm player check</title></head>
<body>
<video id="video" src="%(master)s" muted autoplay playsinline></video>
<script>
const video = document.getElementById("video");
function report(event, extra) {
  const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  const fields = Object.assign({
    event: event,
    currentTime: video.currentTime,
    duration: video.duration,
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
    readyState: video.readyState,
    networkState: video.networkState,
    totalVideoFrames: quality.totalVideoFrames,
    droppedVideoFrames: quality.droppedVideoFrames,
    videoDecodedBytes: video.webkitVideoDecodedByteCount,
    audioDecodedBytes: video.webkitAudioDecodedByteCount,
    canPlayHLS: video.canPlayType("application/vnd.apple.mpegurl"),
  }, extra || {});
  fetch("/report?" + new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])))
    .catch(() => {});
}
report("page");
video.addEventListener("loadedmetadata", () => report("loadedmetadata"));
video.addEventListener("playing", () => report("playing"));
video.addEventListener("ended", () => report("ended"));
video.addEventListener("error", () => report("error", {
  code: video.error ? video.error.code : "",
  message: video.error ? video.error.message : "",
}));
setInterval(() => report("progress"), 1000);
video.play().catch((e) => report("playrejected", {message: String(e)}));
</script>
</body></html>
"""

MIME_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".html": "text/html; charset=utf-8",
}

MEDIA_ERRORS = {
    "1": "MEDIA_ERR_ABORTED",
    "2": "MEDIA_ERR_NETWORK",
    "3": "MEDIA_ERR_DECODE",
    "4": "MEDIA_ERR_SRC_NOT_SUPPORTED",
}


class CheckFailed(Exception):
    pass


def make_handler(folder, page, reports, missing):
    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=folder, **kwargs)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/report":
                fields = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
                reports.put(fields)
                self.send_response(204)
                self.end_headers()
            elif url.path == "/__player.html":
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            else:
                if not os.path.isfile(self.translate_path(self.path)) and url.path != "/favicon.ico":
                    missing.append(url.path)
                super().do_GET()

        def end_headers(self):
            if urllib.parse.urlsplit(self.path).path.endswith(".m3u8"):
                self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def log_message(self, format, *args):
            pass

    return Handler


def find_chromium(name):
    path = shutil.which(name)
    if path is None:
        raise CheckFailed(f"{name} is not installed (on Debian: apt-get install chromium, or run `make deps`)")
    return path


def play(folder, master, expected_duration, tolerance, expect_audio, chromium, extra_seconds, verbose, until_playing):
    if not os.path.isfile(os.path.join(folder, master)):
        raise CheckFailed(f"{os.path.join(folder, master)} does not exist")
    reports = queue.Queue()
    missing = []
    page = PAGE % {"master": master}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(folder, page, reports, missing))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/__player.html"
    executable = find_chromium(chromium)
    profile = tempfile.mkdtemp(prefix="farm-chromium-")
    command = [
        executable,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--mute-audio",
        f"--user-data-dir={profile}",
        url,
    ]
    log = tempfile.TemporaryFile()
    browser = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    last = {}
    try:
        allowed = (until_playing if until_playing is not None else expected_duration) + extra_seconds
        deadline = time.monotonic() + allowed
        seen_page = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                goal = "reach the asked time" if until_playing is not None else "end"
                raise CheckFailed(
                    f"playback did not {goal} within {allowed:.0f} s; "
                    + (f"last report: {describe(last)}" if seen_page else "the page never reported (see below)")
                )
            if browser.poll() is not None and reports.empty():
                raise CheckFailed(f"chromium exited with {browser.returncode} before the video ended")
            try:
                report = reports.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            seen_page = True
            last = report
            event = report.get("event")
            if verbose:
                print(f"chromium: {describe(report)}", file=sys.stderr)
            if event == "error":
                code = report.get("code", "")
                raise CheckFailed(
                    f"media error {code} ({MEDIA_ERRORS.get(code, 'unknown')}): {report.get('message') or '(no message)'}"
                    + f"; at {describe(report)}"
                )
            if event == "playrejected":
                raise CheckFailed(f"play() was rejected: {report.get('message')}")
            if until_playing is not None and event in ("playing", "progress"):
                if number(report, "currentTime") >= until_playing and number(report, "videoWidth") > 0:
                    return report
            if event == "ended":
                if until_playing is not None:
                    raise CheckFailed(f"playback ended before {until_playing} s had played; at {describe(report)}")
                check_end(report, expected_duration, tolerance, expect_audio)
                return report
    except CheckFailed:
        if missing:
            print(f"play_in_chromium: requested but absent: {', '.join(sorted(set(missing)))}", file=sys.stderr)
        log.seek(0)
        # D-Bus is absent in containers and CI; its complaints say nothing about playback.
        lines = log.read().decode(errors="replace").splitlines()
        tail = [line for line in lines if line.strip() and "dbus" not in line][-15:]
        if tail:
            print("play_in_chromium: chromium's last output:\n  " + "\n  ".join(tail), file=sys.stderr)
        raise
    finally:
        stop(browser)
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)


def check_end(report, expected_duration, tolerance, expect_audio):
    current = number(report, "currentTime")
    duration = number(report, "duration")
    problems = []
    # Each check is written so that a value the player did not report (NaN) fails it: NaN compares false.
    if not current >= duration - 0.1:
        problems.append(f"ended at currentTime {current:.3f} s, before the duration {duration:.3f} s")
    if not abs(duration - expected_duration) <= tolerance:
        problems.append(f"duration is {duration:.3f} s, expected {expected_duration:.3f} s (± {tolerance} s)")
    if not (number(report, "videoWidth") > 0 and number(report, "videoHeight") > 0):
        problems.append("no picture size: no video was decoded")
    frames = report.get("totalVideoFrames")
    if frames not in (None, "undefined") and not number(report, "totalVideoFrames") > 0:
        problems.append("no video frame was presented")
    if expect_audio and not number(report, "audioDecodedBytes") > 0:
        problems.append("no audio was decoded (webkitAudioDecodedByteCount is 0 or not reported)")
    if problems:
        raise CheckFailed("; ".join(problems) + f"; at {describe(report)}")


def number(report, key):
    try:
        return float(report.get(key, "nan"))
    except ValueError:
        return float("nan")


def describe(report):
    return json.dumps(report, sort_keys=True)


def stop(browser):
    if browser.poll() is not None:
        return
    try:
        os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    if browser.poll() is None:
        try:
            os.killpg(browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        browser.wait()


def main():
    # Killed by a time limit (SIGTERM), still run play()'s `finally`, so Chromium is never left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the HLS output folder (holding the master playlist)")
    parser.add_argument("--master", default="master.m3u8", help="the master playlist's name in the folder")
    parser.add_argument("--duration", type=float, help="the expected duration in seconds")
    parser.add_argument(
        "--until-playing", type=float, help="pass once this many seconds have played (a job still running)"
    )
    parser.add_argument("--tolerance", type=float, default=0.2, help="allowed duration error in seconds")
    parser.add_argument("--expect-audio", action="store_true", help="require decoded audio")
    parser.add_argument("--chromium", default=os.environ.get("FARM_TEST_CHROMIUM", "chromium"))
    parser.add_argument("--extra-seconds", type=float, default=60, help="time allowed beyond the duration")
    parser.add_argument("--verbose", action="store_true", help="print every report from the page")
    arguments = parser.parse_args()
    if (arguments.duration is None) == (arguments.until_playing is None):
        parser.error("give exactly one of --duration and --until-playing")
    try:
        report = play(
            os.path.abspath(arguments.folder),
            arguments.master,
            arguments.duration,
            arguments.tolerance,
            arguments.expect_audio,
            arguments.chromium,
            arguments.extra_seconds,
            arguments.verbose,
            arguments.until_playing,
        )
    except CheckFailed as failure:
        print(f"play_in_chromium: FAILED: {failure}", file=sys.stderr)
        return 1
    if arguments.until_playing is not None:
        print(
            f"play_in_chromium: {arguments.folder}/{arguments.master} is playing: "
            + f"currentTime {number(report, 'currentTime'):.3f} s, {report.get('videoWidth')}x{report.get('videoHeight')}"
        )
        return 0
    print(
        f"play_in_chromium: played {arguments.folder}/{arguments.master} to the end: "
        + f"currentTime {number(report, 'currentTime'):.3f} s of {number(report, 'duration'):.3f} s, "
        + f"{report.get('videoWidth')}x{report.get('videoHeight')}, "
        + f"{report.get('totalVideoFrames')} frames ({report.get('droppedVideoFrames')} dropped), "
        + f"{report.get('audioDecodedBytes')} audio bytes decoded"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
