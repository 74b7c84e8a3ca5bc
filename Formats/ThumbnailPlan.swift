import FarmProtocol
import Foundation

/// Which frames a job's poster and sprite sheet show, where each tile sits, and the WebVTT that points players at
/// them. Pure: all times are whole milliseconds, so the cues the VTT lists are exactly the ones planned (no rounding
/// can open a gap between two cues or push the last one past the video's end).
package struct ThumbnailPlan: Sendable, Equatable {
    package struct Tile: Sendable, Equatable {
        /// The cue this tile stands for: `[startMS, endMS)` of the video, from its first frame.
        package var startMS: Int
        package var endMS: Int
        /// Top-left corner in the sheet.
        package var x: Int
        package var y: Int
        /// The frame the tile shows: the first keyframe shown inside its cue when there is one (decoding it costs
        /// a frame or two, where the frame at the cue's start costs up to a GOP), else the frame at `startMS`.
        package var pictureMS: Int
    }

    package struct Options: Sendable, Equatable {
        /// Seconds between tiles for short videos; longer ones get a longer interval (whole seconds).
        package var minimumInterval = 2
        /// At most this many tiles: players show one at a time, and the sheet stays a few hundred kilobytes.
        package var maximumTiles = 100
        package var tileWidth = 160
        package var columns = 10
        /// The poster is never wider than this (nor than the top rung).
        package var posterMaximumWidth = 1280

        package init() {}
    }

    package var durationMS: Int
    package var intervalMS: Int
    package var tileWidth: Int
    package var tileHeight: Int
    package var columns: Int
    package var rows: Int
    package var tiles: [Tile]
    package var posterMS: Int
    package var posterWidth: Int
    package var posterHeight: Int

    package var sheetWidth: Int { self.columns * self.tileWidth }
    package var sheetHeight: Int { self.rows * self.tileHeight }

    /// - Parameters:
    ///   - durationSeconds: the video's presentation duration.
    ///   - displayWidth, displayHeight: the upright picture as displayed (non-square pixels and rotation applied).
    ///   - keyframesMS: when the video's keyframes are shown (`keyframeTimes`), in increasing order; empty when not
    ///     known, and every tile then shows the frame at its cue's start.
    package init(
        durationSeconds: Double,
        displayWidth: Int,
        displayHeight: Int,
        keyframesMS: [Int] = [],
        options: Options = Options()
    ) {
        let duration = max(1, Int((durationSeconds * 1000).rounded()))
        let interval = max(
            options.minimumInterval,
            (duration + options.maximumTiles * 1000 - 1) / (options.maximumTiles * 1000)
        )
        let intervalMS = interval * 1000
        let count = (duration + intervalMS - 1) / intervalMS
        self.durationMS = duration
        self.intervalMS = intervalMS
        self.tileWidth = options.tileWidth
        self.tileHeight = Self.evenHeight(
            width: options.tileWidth,
            displayWidth: displayWidth,
            displayHeight: displayHeight
        )
        self.columns = min(options.columns, count)
        self.rows = (count + self.columns - 1) / self.columns
        var keyframes = keyframesMS[...]
        self.tiles = (0..<count).map {
            [tileWidth = self.tileWidth, tileHeight = self.tileHeight, columns = self.columns] index in
            let start = index * intervalMS
            let end = min((index + 1) * intervalMS, duration)
            while let first = keyframes.first, first < start { keyframes.removeFirst() }
            return Tile(
                startMS: start,
                endMS: end,
                x: index % columns * tileWidth,
                y: index / columns * tileHeight,
                pictureMS: keyframes.first.map { $0 < end ? $0 : start } ?? start
            )
        }
        // A tenth in: past fades from black and title cards. A clip under a second shows its first frame.
        self.posterMS = duration >= 1000 ? duration / 10 : 0
        let width = min(options.posterMaximumWidth, displayWidth) / 2 * 2
        self.posterWidth = max(2, width)
        self.posterHeight = Self.evenHeight(
            width: self.posterWidth,
            displayWidth: displayWidth,
            displayHeight: displayHeight
        )
    }

    /// The height, rounded to even (4:2:0 chroma), that keeps the display aspect at `width`.
    private static func evenHeight(width: Int, displayWidth: Int, displayHeight: Int) -> Int {
        guard displayWidth > 0 else { return 2 }
        let height = Double(width) * Double(displayHeight) / Double(displayWidth)
        return max(2, Int((height / 2).rounded()) * 2)
    }

    /// When the keyframes among `packets` are shown, in milliseconds from the frame at `originPTS`, rounded up (a
    /// seek to the time then lands on the keyframe, never on the frame before it), in increasing order, and only the
    /// first of each second: every cue starts on a whole second, so no tile would choose a later one. A 3-hour source
    /// gives at most 10,800 times.
    package static func keyframeTimes(of packets: [VideoPacket], originPTS: Int64, timeBase: Rational) -> [Int] {
        let den = Int64(max(timeBase.den, 1))
        let times = packets.lazy.filter { $0.isKeyframe && !$0.isDiscarded && $0.pts >= originPTS }
            .map { packet -> Int in
                let scaled = (packet.pts - originPTS) * Int64(timeBase.num) * 1000
                return Int((scaled + den - 1) / den)
            }
            .sorted()
        var firstOfEachSecond: [Int] = []
        for time in times where firstOfEachSecond.last.map({ $0 / 1000 != time / 1000 }) ?? true {
            firstOfEachSecond.append(time)
        }
        return firstOfEachSecond
    }

    /// The WebVTT file: one cue per tile, contiguous, the last ending at the video's duration.
    package func webVTT(sheetName: String) -> String {
        var lines = ["WEBVTT", ""]
        for tile in self.tiles {
            lines.append("\(Self.timestamp(tile.startMS)) --> \(Self.timestamp(tile.endMS))")
            lines.append("\(sheetName)#xywh=\(tile.x),\(tile.y),\(self.tileWidth),\(self.tileHeight)")
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    /// `HH:MM:SS.mmm`, as WebVTT requires (hours always present, so any length parses).
    package static func timestamp(_ milliseconds: Int) -> String {
        let seconds = milliseconds / 1000
        return String(
            format: "%02d:%02d:%02d.%03d",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            milliseconds % 1000
        )
    }
}
