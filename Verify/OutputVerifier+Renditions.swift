import CFFmpeg
import FarmFormats
import FarmMedia
import Foundation

// The state `OutputVerifier` keeps per rendition while it decodes, and the files it reads.

/// The files of one media playlist.
struct PlaylistFiles {
    /// The init segment's bytes, nil when missing or unreadable.
    var initData: Data?
    /// Per playlist segment: its path and size, nil when missing or unreadable.
    var segmentPaths: [String?]
    var segmentSizes: [Int?]
}

/// Where each listed segment landed in a joined file.
struct JoinedSegments {
    var path: String
    /// Byte range per playlist segment; nil for a segment that could not be read.
    var ranges: [Range<Int64>?]

    func segment(containing position: Int64) -> Int? {
        guard position >= 0 else { return nil }
        return self.ranges.firstIndex { $0?.contains(position) ?? false }
    }
}

/// A video rendition being decoded in step with the source.
final class RungState {
    struct SegmentState {
        var present: Bool
        var measurement: VerificationChecks.SegmentMeasurement
    }

    let name: String
    let variant: HLSMasterPlaylist.Variant
    let playlist: HLSMediaPlaylist
    let files: PlaylistFiles
    var reader: StreamReader?
    /// Relative presentation times of every decoded frame, and their raw timestamps.
    var times: [Double] = []
    var timestamps: [Int64] = []
    var firstTimestamp: Int64?
    var width = 0
    var height = 0
    var error: String?
    /// Segments (playlist index) with a negative composition offset, and the deepest: libavformat reads them late
    /// (`PresentationDelay`).
    var picturesShownBeforeDecoding: [(segment: Int, offset: Int64)] = []
    /// Set when a frame's size differs from the first frame's (its quality is then not measured).
    var sizeChange: String?
    var finished = false
    var pending: (time: Double, picture: YUVPicture?)?
    var quality = QualityAccumulator()
    private var sourceScaler: UprightScaler?
    private var converter: Scaler?
    /// The rendition's YUV matrix as tagged (untagged is read from its size, as players do): reference pictures are
    /// made in it.
    private var colorspace: AVColorSpace?

    init(name: String, variant: HLSMasterPlaylist.Variant, playlist: HLSMediaPlaylist, files: PlaylistFiles) {
        self.name = name
        self.variant = variant
        self.playlist = playlist
        self.files = files
    }

    var firstSeconds: Double? {
        guard let reader = self.reader, let first = self.firstTimestamp else { return nil }
        return reader.seconds(first)
    }

    /// Decodes up to the first frame not earlier than `time - tolerance` and returns it (kept as pending); frames
    /// before it have no source frame at their time and are only recorded.
    func pendingFrame(
        before time: Double,
        tolerance: Double,
        options: VerificationOptions
    ) -> (time: Double, picture: YUVPicture?)? {
        while true {
            if let pending = self.pending {
                if pending.time >= time - tolerance { return pending }
                self.pending = nil
            }
            guard self.decodeOne(options: options) else { return nil }
        }
    }

    func drain(options: VerificationOptions) {
        self.pending = nil
        while self.decodeOne(options: options) { self.pending = nil }
    }

    /// Decodes one frame into `pending`; false at the end or after an error (kept in `error`).
    private func decodeOne(options: VerificationOptions) -> Bool {
        guard !self.finished, let reader = self.reader else { return false }
        do {
            guard try reader.next() else {
                self.finished = true
                return false
            }
            guard let timestamp = reader.frameTimestamp else {
                self.error = "frame \(self.times.count) has no timestamp"
                self.finished = true
                return false
            }
            let first = self.firstTimestamp ?? timestamp
            self.firstTimestamp = first
            if self.width == 0 {
                self.width = reader.frame.width
                self.height = reader.frame.height
            }
            let time = reader.seconds(timestamp - first)
            self.times.append(time)
            self.timestamps.append(timestamp)
            var picture: YUVPicture?
            let sameSize = reader.frame.width == self.width && reader.frame.height == self.height
            if !sameSize, self.sizeChange == nil {
                self.sizeChange =
                    "frame \(self.times.count - 1) at \(VerificationChecks.seconds(time)) is "
                    + "\(reader.frame.width)x\(reader.frame.height), the rendition starts at \(self.width)x\(self.height)"
            }
            if options.measureQuality, sameSize {
                if self.colorspace == nil { self.colorspace = reader.frame.colorspace }
                if reader.frame.isYUV420P8 {
                    picture = reader.frame.yuvPicture()
                } else {
                    if self.converter == nil {
                        self.converter = try Scaler(
                            from: reader.frame,
                            width: Int32(self.width),
                            height: Int32(self.height),
                            format: AV_PIX_FMT_YUV420P,
                            colorspace: self.colorspace
                        )
                    }
                    picture = try self.converter?.scale(reader.frame).yuvPicture()
                }
            }
            self.pending = (time, picture)
            return true
        } catch {
            self.error = "decoding stopped after \(self.times.count) frames: \(error)"
            self.finished = true
            return false
        }
    }

    /// The source frame upright and scaled to this rendition's size, yuv420p: the picture a viewer should see.
    func scaleSource(_ frame: Frame, rotation: Int) throws -> YUVPicture? {
        guard self.width > 0, self.height > 0 else { return nil }
        if self.sourceScaler == nil {
            self.sourceScaler = try UprightScaler(
                from: frame,
                width: self.width,
                height: self.height,
                rotation: rotation,
                format: AV_PIX_FMT_YUV420P,
                colorspace: self.colorspace
            )
        }
        return try self.sourceScaler?.scale(frame).yuvPicture()
    }

    /// Per playlist segment: its frames' relative times (sorted) and whether its first packet is an IDR.
    func segmentMeasurements() -> [SegmentState] {
        var states = self.playlist.segments.enumerated().map { index, segment in
            SegmentState(
                present: self.files.segmentPaths[index] != nil,
                measurement: .init(uri: segment.uri, frameTimes: [], startsWithIDR: nil)
            )
        }
        guard let reader = self.reader else { return states }
        var segmentOfTimestamp: [Int64: Int] = [:]
        for packet in reader.packets {
            let segment = packet.input
            guard states.indices.contains(segment) else { continue }
            segmentOfTimestamp[packet.pts] = segment
            if states[segment].measurement.startsWithIDR == nil {
                states[segment].measurement.startsWithIDR = packet.isIDR ?? packet.isKeyframe
            }
        }
        for (time, timestamp) in zip(self.times, self.timestamps) {
            guard let segment = segmentOfTimestamp[timestamp] else { continue }
            states[segment].measurement.frameTimes.append(time)
        }
        for index in states.indices { states[index].measurement.frameTimes.sort() }
        return states
    }

    /// Relative times of the IDR frames (keyframes for codecs whose NAL units are not read).
    func keyframeTimes() -> [Double] {
        guard let reader = self.reader, let first = self.firstTimestamp else { return [] }
        return reader.packets.filter { $0.isIDR ?? $0.isKeyframe }.map { reader.seconds($0.pts - first) }
    }
}

/// A temporary folder for joined segments, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init() throws {
        self.path = NSTemporaryDirectory() + "farm-verify-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (self.path as NSString).appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(atPath: self.path) }
}
