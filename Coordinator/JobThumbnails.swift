import FarmFormats
import FarmMedia
import Foundation

/// Writes a job's `poster.jpg`, `thumbnails.jpg` and `thumbnails.vtt` next to where its `master.m3u8` will be, from
/// the source, while the job encodes (`ThumbnailService`); the poster no wider than the top rung (nor 1280).
package enum JobThumbnails {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package static let names = [Thumbnails.posterName, Thumbnails.sheetName, Thumbnails.cuesName]

    package static func write(_ job: JobForThumbnails) throws {
        var options = ThumbnailPlan.Options()
        if let top = job.topRenditionWidth {
            options.posterMaximumWidth = min(options.posterMaximumWidth, top)
        }
        do {
            try Thumbnails.write(
                from: ThumbnailSource(
                    path: job.source,
                    originPTS: job.sourceInfo.originPTS,
                    durationSeconds: job.sourceInfo.durationSeconds,
                    keyframesMS: job.sourceInfo.keyframesMS ?? []
                ),
                to: job.outputDirectory,
                options: options
            )
        } catch {
            throw Failure(description: "making the poster and thumbnails failed: \(error)")
        }
    }

    /// Removes the three files of a job that ended while they were being made (files the farm did not write under
    /// these names cannot exist: `write` replaces them).
    package static func remove(from outputDirectory: String) {
        for name in self.names {
            try? FileManager.default.removeItem(atPath: (outputDirectory as NSString).appendingPathComponent(name))
        }
    }
}
