import Foundation

/// How a task's output files are named, relative to the job's output folder: `<rendition>/init.mp4` and
/// `<rendition>/segment_NNNNN.m4s` (five digits, the segment's number in the whole rendition). The agent names its
/// files with `initSegmentPath` and `segmentPath`, and the coordinator accepts only names `isOutputPath` allows, so
/// the two sides cannot drift apart.
package enum OutputNames {
    /// The one rendition the audio task writes.
    package static let audioRendition = "audio"
    package static let initSegment = "init.mp4"

    private static let segmentPrefix = "segment_"
    private static let segmentSuffix = ".m4s"
    private static let segmentDigits = 5

    /// `segment_00003.m4s`.
    package static func segmentFileName(index: Int) -> String {
        String(format: "\(Self.segmentPrefix)%0\(Self.segmentDigits)d\(Self.segmentSuffix)", index)
    }

    /// `360p/init.mp4`.
    package static func initSegmentPath(rendition: String) -> String { "\(rendition)/\(Self.initSegment)" }

    /// `360p/segment_00003.m4s`.
    package static func segmentPath(rendition: String, index: Int) -> String {
        "\(rendition)/\(Self.segmentFileName(index: index))"
    }

    /// True for `<rendition>/init.mp4` and `<rendition>/segment_NNNNN.m4s` of one of `renditions`. Anything else
    /// (`..`, absolute paths, deeper folders) is refused, so an agent cannot write elsewhere.
    package static func isOutputPath(_ path: String, renditions: [String]) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        guard renditions.contains(String(parts[0])) else { return false }
        let name = parts[1]
        if name == Self.initSegment { return true }
        guard name.hasPrefix(Self.segmentPrefix), name.hasSuffix(Self.segmentSuffix) else { return false }
        let digits = name.dropFirst(Self.segmentPrefix.count).dropLast(Self.segmentSuffix.count)
        return digits.count == Self.segmentDigits && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
    }
}

extension TaskSpec {
    /// The renditions this task writes: the spec's, or `audio` for the audio task.
    package var outputRenditions: [String] {
        switch self.kind {
        case .video: self.renditions.map(\.name)
        case .audio: [OutputNames.audioRendition]
        }
    }

    /// True for the file names an agent may write for this task (see `OutputNames.isOutputPath`).
    package func isOutputPath(_ path: String) -> Bool {
        OutputNames.isOutputPath(path, renditions: self.outputRenditions)
    }

    /// Every file a video task produces: each rendition's init segment and its segments `firstSegmentIndex ..<
    /// firstSegmentIndex + segmentStarts.count`. Nil for the audio task, whose segment count the encode decides.
    package var expectedOutputPaths: Set<String>? {
        switch self.kind {
        case .audio: return nil
        case .video:
            var expected = Set<String>()
            for rendition in self.renditions {
                expected.insert(OutputNames.initSegmentPath(rendition: rendition.name))
                for offset in 0..<self.segmentStarts.count {
                    expected.insert(
                        OutputNames.segmentPath(rendition: rendition.name, index: self.firstSegmentIndex + offset)
                    )
                }
            }
            return expected
        }
    }
}
