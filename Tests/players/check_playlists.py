#!/usr/bin/env python3
"""Loads an HLS folder's playlists with the `m3u8` parser from PyPI and checks what a player relies on.

    check_playlists.py HLS_FOLDER --variants N [--duration SECONDS] [--no-audio] [--expect-iframes]

- master.m3u8 loads as a master playlist, in strict mode too (no line the parser does not know);
- exactly N variants, each with a resolution, a bandwidth and codecs, all different resolutions;
- an audio group: one or more EXT-X-MEDIA TYPE=AUDIO with one GROUP-ID and a URI, which every variant's AUDIO
  attribute names (with --no-audio: no audio rendition and no AUDIO attribute);
- with --expect-iframes: one I-frame playlist (EXT-X-I-FRAME-STREAM-INF) per variant, each with a resolution,
  bandwidth and codecs, matching a variant's resolution;
- every media and I-frame playlist loads, is VOD (EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST), has an EXT-X-MAP
  whose file exists, segments whose files exist (and whose byte ranges lie inside them), no segment longer than
  EXT-X-TARGETDURATION once rounded, and (with --duration) lasts the expected time within 0.2 s.

Exits 0 when every check passes; otherwise 1, with every failed check on standard error.
"""

import argparse
import os
import sys

import m3u8


class Checker:
    def __init__(self, folder):
        self.folder = folder
        self.problems = []

    def fail(self, message):
        self.problems.append(message)

    def load(self, relative):
        path = os.path.join(self.folder, relative)
        if not os.path.isfile(path):
            self.fail(f"{relative}: the file does not exist")
            return None
        try:
            playlist = m3u8.load(path)
        except Exception as error:  # the parser raises plain exceptions of several kinds
            self.fail(f"{relative}: m3u8.load failed: {error!r}")
            return None
        try:
            with open(path, encoding="utf8") as file:
                m3u8.parse(file.read().strip(), strict=True)
        except Exception as error:
            self.fail(f"{relative}: does not parse in strict mode: {error!r}")
        return playlist

    def check_master(self, variants, audio, iframes):
        master = self.load("master.m3u8")
        if master is None:
            return [], []
        if not master.is_variant:
            self.fail("master.m3u8 is not a master playlist (no EXT-X-STREAM-INF)")
            return [], []
        if len(master.playlists) != variants:
            self.fail(f"master.m3u8 lists {len(master.playlists)} variants, expected {variants}")
        resolutions = []
        for variant in master.playlists:
            info = variant.stream_info
            name = f"variant {variant.uri}"
            if not info.resolution:
                self.fail(f"{name}: no RESOLUTION")
            else:
                resolutions.append(info.resolution)
            if not info.bandwidth or info.bandwidth <= 0:
                self.fail(f"{name}: no BANDWIDTH")
            if info.average_bandwidth is not None and info.bandwidth and info.average_bandwidth > info.bandwidth:
                self.fail(f"{name}: AVERAGE-BANDWIDTH {info.average_bandwidth} above BANDWIDTH {info.bandwidth}")
            if not info.codecs:
                self.fail(f"{name}: no CODECS")
            elif audio and not any(codec.startswith("mp4a") for codec in info.codecs.split(",")):
                self.fail(f"{name}: CODECS {info.codecs!r} names no audio codec although the variant has audio")
        if len(set(resolutions)) != len(resolutions):
            self.fail(f"master.m3u8: two variants share a resolution: {resolutions}")

        renditions = [media for media in master.media if media.type == "AUDIO"]
        if audio:
            self.check_audio_group(master, renditions)
        else:
            if renditions:
                self.fail(f"master.m3u8 has {len(renditions)} audio renditions, expected none")
            for variant in master.playlists:
                if variant.stream_info.audio:
                    self.fail(f"variant {variant.uri} names audio group {variant.stream_info.audio!r}, expected none")

        iframe_uris = []
        if iframes:
            if len(master.iframe_playlists) != variants:
                self.fail(f"master.m3u8 lists {len(master.iframe_playlists)} I-frame playlists, expected {variants}")
            for iframe in master.iframe_playlists:
                info = iframe.iframe_stream_info
                name = f"I-frame playlist {iframe.uri}"
                if not info.resolution:
                    self.fail(f"{name}: no RESOLUTION")
                elif info.resolution not in resolutions:
                    self.fail(f"{name}: RESOLUTION {info.resolution} matches no variant's ({resolutions})")
                if not info.bandwidth or info.bandwidth <= 0:
                    self.fail(f"{name}: no BANDWIDTH")
                if not info.codecs:
                    self.fail(f"{name}: no CODECS")
                iframe_uris.append(iframe.uri)
        media_uris = [variant.uri for variant in master.playlists] + [media.uri for media in renditions if media.uri]
        return media_uris, iframe_uris

    def check_audio_group(self, master, renditions):
        if not renditions:
            self.fail("master.m3u8 has no EXT-X-MEDIA TYPE=AUDIO")
            return
        groups = {media.group_id for media in renditions}
        if None in groups or len(groups) != 1:
            self.fail(f"master.m3u8: audio renditions should share one GROUP-ID, found {sorted(map(str, groups))}")
        for media in renditions:
            if not media.uri:
                self.fail(f"audio rendition {media.name!r}: no URI")
        if not any(media.default == "YES" for media in renditions):
            self.fail("master.m3u8: no audio rendition is DEFAULT=YES")
        for variant in master.playlists:
            if variant.stream_info.audio not in groups:
                self.fail(
                    f"variant {variant.uri}: AUDIO={variant.stream_info.audio!r} names no audio group "
                    + f"(groups: {sorted(map(str, groups))})"
                )

    def check_media(self, relative, duration, iframes_only):
        playlist = self.load(relative)
        if playlist is None:
            return
        if playlist.is_variant:
            self.fail(f"{relative}: is a master playlist, expected a media playlist")
            return
        if playlist.playlist_type is None or playlist.playlist_type.upper() != "VOD":
            self.fail(f"{relative}: EXT-X-PLAYLIST-TYPE is {playlist.playlist_type!r}, expected VOD")
        if not playlist.is_endlist:
            self.fail(f"{relative}: no EXT-X-ENDLIST")
        if iframes_only and not playlist.is_i_frames_only:
            self.fail(f"{relative}: no EXT-X-I-FRAMES-ONLY")
        if not iframes_only and playlist.is_i_frames_only:
            self.fail(f"{relative}: EXT-X-I-FRAMES-ONLY in a playlist the master lists as a normal variant")
        if not playlist.segments:
            self.fail(f"{relative}: no segments")
            return
        base = os.path.dirname(os.path.join(self.folder, relative))
        maps = {segment.init_section.uri for segment in playlist.segments if segment.init_section is not None}
        if not maps or any(segment.init_section is None for segment in playlist.segments):
            self.fail(f"{relative}: a segment has no EXT-X-MAP (fMP4 needs the init section)")
        for uri in sorted(maps):
            if not os.path.isfile(os.path.join(base, uri)):
                self.fail(f"{relative}: EXT-X-MAP {uri} does not exist")
        target = playlist.target_duration
        if target is None:
            self.fail(f"{relative}: no EXT-X-TARGETDURATION")
        total = 0.0
        for index, segment in enumerate(playlist.segments):
            total += segment.duration or 0
            name = f"{relative}: segment {index} ({segment.uri})"
            if not segment.duration or segment.duration <= 0:
                self.fail(f"{name}: EXTINF duration {segment.duration!r}")
            if target is not None and segment.duration and round(segment.duration) > target:
                self.fail(f"{name}: lasts {segment.duration} s, above EXT-X-TARGETDURATION {target}")
            path = os.path.join(base, segment.uri)
            if not os.path.isfile(path):
                self.fail(f"{name}: the file does not exist")
                continue
            size = os.path.getsize(path)
            if size == 0:
                self.fail(f"{name}: the file is empty")
            if segment.byterange:
                length, _, offset = segment.byterange.partition("@")
                if offset and int(offset) + int(length) > size:
                    self.fail(f"{name}: byte range {segment.byterange} runs past the file's {size} bytes")
        if duration is not None and abs(total - duration) > 0.2:
            self.fail(f"{relative}: segments add up to {total:.3f} s, expected {duration:.3f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the HLS output folder holding master.m3u8")
    parser.add_argument("--variants", type=int, required=True, help="the expected number of video variants")
    parser.add_argument("--duration", type=float, help="the expected duration of every playlist in seconds")
    parser.add_argument("--no-audio", action="store_true", help="expect no audio group")
    parser.add_argument("--expect-iframes", action="store_true", help="expect one I-frame playlist per variant")
    arguments = parser.parse_args()

    checker = Checker(arguments.folder)
    media, iframes = checker.check_master(arguments.variants, not arguments.no_audio, arguments.expect_iframes)
    for uri in media:
        checker.check_media(uri, arguments.duration, iframes_only=False)
    for uri in iframes:
        checker.check_media(uri, arguments.duration, iframes_only=True)
    if checker.problems:
        print(f"check_playlists: {len(checker.problems)} problems in {arguments.folder}:", file=sys.stderr)
        for problem in checker.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(
        f"check_playlists: {arguments.folder}: {len(media)} media playlists and {len(iframes)} I-frame playlists "
        + "load and check out"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
