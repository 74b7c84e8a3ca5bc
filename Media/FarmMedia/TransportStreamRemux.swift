import FarmFormats
import Foundation

/// Rewrites the farm's fMP4 segments as MPEG-TS (`--container ts`): packets and timestamps unchanged, so the TS
/// output has exactly the frames, keyframes and timeline of the fMP4 one, and the same input gives the same bytes.
package enum TransportStreamRemux {
    /// Writes the segment `segment` (decodable after `initSegment`) to `output` as MPEG-TS. The muxer turns H.264
    /// into Annex B with SPS/PPS before each IDR and AAC into ADTS, so every `.ts` file starts independently.
    package static func remux(initSegment: String, segment: String, output: String) throws {
        // libavformat reads a fragment only after its moov: join the two in a scratch file beside the output.
        let joined = output + ".joined.mp4"
        do {
            let data =
                try Data(contentsOf: URL(fileURLWithPath: initSegment))
                + Data(contentsOf: URL(fileURLWithPath: segment))
            try data.write(to: URL(fileURLWithPath: joined))
        } catch {
            throw MediaError(
                .io,
                "cannot join \(initSegment) and \(segment) for MPEG-TS: \(error); check the output folder"
            )
        }
        defer { try? FileManager.default.removeItem(atPath: joined) }
        try ChunkExtractor.extract(source: joined, streamIndex: 0, output: output, format: "mpegts") { _ in .copy }
    }
}
