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
    package init(durationSeconds: Double, displayWidth: Int, displayHeight: Int, options: Options = Options()) {
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
        self.tiles = (0..<count).map {
            [tileWidth = self.tileWidth, tileHeight = self.tileHeight, columns = self.columns] index in
            Tile(
                startMS: index * intervalMS,
                endMS: min((index + 1) * intervalMS, duration),
                x: index % columns * tileWidth,
                y: index / columns * tileHeight
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
