import FarmFormats
import FarmMedia
import Foundation

extension OutputVerifier {
    /// The checks of one rendition's I-frame playlist (the one the master lists in the variant's folder): its tags,
    /// every entry's byte range against the real bytes, and the declared BANDWIDTH against the ranges' peak.
    static func iFrameFailures(
        master: HLSMasterPlaylist,
        variant: HLSMasterPlaylist.Variant,
        directory: URL,
        needsMap: Bool
    ) -> (failures: [String], notes: [String]) {
        guard let stream = master.iFrameStream(beside: variant), let uri = stream.uri else { return ([], []) }  // Reported by VerificationChecks.iFrameStreamFailures.
        let playlistURL = directory.appendingPathComponent(uri)
        guard let data = FileManager.default.contents(atPath: playlistURL.path) else {
            return (["\(uri): the I-frame playlist the master lists does not exist or is unreadable"], [])
        }
        let playlist: HLSMediaPlaylist
        do {
            playlist = try HLSMediaPlaylist(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            return (["\(uri) is not a valid playlist: \(error)"], [])
        }
        var files: [String: Data] = [:]
        let entries = playlist.segments.map { segment -> VerificationChecks.IFrameEntry in
            let path = playlistURL.deletingLastPathComponent().appendingPathComponent(segment.uri).path
            if files[path] == nil { files[path] = FileManager.default.contents(atPath: path) }
            guard let file = files[path], let range = segment.byteRange, range.upperBound <= file.count else {
                return .init(
                    uri: segment.uri,
                    byteRange: segment.byteRange,
                    fileSize: files[path]?.count,
                    holdsKeyframe: nil
                )
            }
            // Parsed from the range's start to the file's end, so a range cut short of its keyframe shows.
            let bytes = [UInt8](file[(file.startIndex + range.lowerBound)...])
            let keyframe = try? LeadingKeyframe(segment: bytes, transportStream: segment.uri.hasSuffix(".ts"))
            return .init(
                uri: segment.uri,
                byteRange: range,
                fileSize: file.count,
                holdsKeyframe: keyframe.map { $0.isKeyframe && $0.end <= range.count } ?? false
            )
        }
        var failures = VerificationChecks.iFramePlaylistFailures(
            name: uri,
            playlist: playlist,
            entries: entries,
            needsMap: needsMap
        )
        // Ranges that are out of bounds or hold no keyframe are named already; bit rates measured over them would
        // only add noise.
        guard failures.isEmpty else { return (failures, []) }
        let sized = zip(playlist.segments, entries).map { segment, entry in
            (duration: segment.duration, bytes: entry.byteRange?.count ?? 0)
        }
        let bandwidth = VerificationChecks.bandwidthFailures(
            variant: .init(uri: uri, attributes: stream.attributes),
            measuredPeak: SegmentBitrate.peak(sized, targetDuration: Double(playlist.targetDuration ?? 0)),
            measuredAverage: SegmentBitrate.average(sized)
        )
        failures += bandwidth.failures
        return (failures, bandwidth.notes)
    }
}
