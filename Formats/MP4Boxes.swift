/// Reads the top-level structure of fragmented MP4 bytes. Pure, tested alone.
package enum MP4Boxes {
    package struct Box: Equatable {
        package var type: String
        package var range: Range<Int>
    }

    package struct Fragments: Equatable {
        /// `ftyp` + `moov`: the init segment.
        package var initSegment: Range<Int>
        /// One range per `moof`+`mdat` pair (with a leading `styp` or `sidx` when present).
        package var segments: [Range<Int>]
    }

    package static func topLevelBoxes(_ bytes: [UInt8]) throws -> [Box] {
        var boxes: [Box] = []
        var offset = 0
        while offset < bytes.count {
            guard offset + 8 <= bytes.count else {
                throw MediaError(.encodingFailed, "MP4 output ends inside a box header at byte \(offset)")
            }
            var size = Int(self.uint32(bytes, offset))
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            if size == 1 {
                guard offset + 16 <= bytes.count else { throw MediaError(.encodingFailed, "MP4 box \(type) truncated") }
                size = Int(self.uint32(bytes, offset + 8)) << 32 | Int(self.uint32(bytes, offset + 12))
            } else if size == 0 {
                size = bytes.count - offset
            }
            guard size >= 8, size <= bytes.count - offset else {
                throw MediaError(.encodingFailed, "MP4 box \(type) at byte \(offset) has a bad size \(size)")
            }
            boxes.append(Box(type: type, range: offset..<(offset + size)))
            offset += size
        }
        return boxes
    }

    package static func fragments(_ bytes: [UInt8]) throws -> Fragments {
        let boxes = try self.topLevelBoxes(bytes)
        guard let moov = boxes.first(where: { $0.type == "moov" }) else {
            throw MediaError(.encodingFailed, "MP4 output has no moov box")
        }
        var segments: [Range<Int>] = []
        var pendingStart: Int?
        for box in boxes {
            switch box.type {
            case "styp", "sidx", "prft":
                if pendingStart == nil { pendingStart = box.range.lowerBound }
            case "moof":
                if pendingStart == nil { pendingStart = box.range.lowerBound }
            case "mdat":
                guard let start = pendingStart else { continue }
                segments.append(start..<box.range.upperBound)
                pendingStart = nil
            default:
                break
            }
        }
        return Fragments(initSegment: 0..<moov.range.upperBound, segments: segments)
    }

    /// The first sample of the fragment that starts `bytes` (a `moof`, optionally after `styp`/`sidx`/`prft`), as
    /// its `traf`'s `tfhd` and `trun` describe it. Only the boxes up to the end of the `moof` need to be present.
    package struct LeadingSample: Equatable {
        /// Where the sample's data lies in `bytes`.
        package var data: Range<Int>
        /// The sample flags say it is a sync sample (an IDR for H.264) that depends on no other.
        package var isSync: Bool
    }

    package static func leadingSample(ofFragment bytes: [UInt8]) throws -> LeadingSample {
        let track = try TrackFragment(bytes)
        let moof = track.moof
        guard let tfhd = track.boxes.first(where: { $0.type == "tfhd" }),
            let trun = track.boxes.first(where: { $0.type == "trun" })
        else { throw MediaError(.invalidInput, "the traf box lacks a tfhd or a trun box") }
        let field = track.field
        // ISO/IEC 14496-12 §8.8.7: tfhd optional fields, in order, as its flags say.
        var cursor = track.contentStart(of: tfhd)
        let tfhdFlags = try field(cursor) & 0xFF_FFFF
        cursor += 8  // version and flags, track ID
        var base = moof.lowerBound
        if tfhdFlags & 0x01 != 0 {
            base = try Int(field(cursor)) << 32 | Int(field(cursor + 4))
            cursor += 8
        }
        if tfhdFlags & 0x02 != 0 { cursor += 4 }
        if tfhdFlags & 0x08 != 0 { cursor += 4 }
        var size: UInt32?
        if tfhdFlags & 0x10 != 0 {
            size = try field(cursor)
            cursor += 4
        }
        var sampleFlags: UInt32?
        if tfhdFlags & 0x20 != 0 { sampleFlags = try field(cursor) }

        // §8.8.8: trun, then the first sample's record.
        cursor = track.contentStart(of: trun)
        let trunFlags = try field(cursor) & 0xFF_FFFF
        guard try field(cursor + 4) > 0 else { throw MediaError(.invalidInput, "the trun box has no sample") }
        cursor += 8
        var dataOffset = 0
        if trunFlags & 0x01 != 0 {
            dataOffset = try Int(Int32(bitPattern: field(cursor)))
            cursor += 4
        }
        if trunFlags & 0x04 != 0 {
            sampleFlags = try field(cursor)
            cursor += 4
        }
        if trunFlags & 0x100 != 0 { cursor += 4 }
        if trunFlags & 0x200 != 0 {
            size = try field(cursor)
            cursor += 4
        }
        if trunFlags & 0x400 != 0, trunFlags & 0x04 == 0 { sampleFlags = try field(cursor) }
        guard let size else { throw MediaError(.invalidInput, "the fragment gives its first sample no size") }
        let start = base + dataOffset
        // sample_is_non_sync_sample is bit 16 of the flags; no flags at all means the trex defaults, unknown here.
        let isSync = sampleFlags.map { $0 & 0x1_0000 == 0 } ?? false
        return LeadingSample(data: start..<(start + Int(size)), isSync: isSync)
    }

    /// The timing of a fragment (`moof`+`mdat`) as its first track's boxes state it: what a player will play, read
    /// from the bytes rather than from what the encoder reported.
    package struct FragmentTiming: Equatable {
        /// `tfdt`'s base media decode time, in the track's timescale.
        package var baseDecodeTime: Int64
        /// Samples in every `trun` of the `traf`.
        package var sampleCount: Int
        /// Their durations summed (per-sample durations, else `tfhd`'s default), in the track's timescale.
        package var duration: Int64
        /// The first sample's composition offset (signed in a version 1 `trun`): a player shows it at
        /// `baseDecodeTime` plus this. 0 when the boxes carry no offsets.
        package var leadingCompositionOffset: Int64 = 0
        /// The most negative composition offset of any sample, 0 when none is negative: a sample shown before it
        /// decodes, which libavformat reads as if every later sample were shown that much later
        /// (`PresentationDelay`).
        package var deepestNegativeCompositionOffset: Int64 = 0
    }

    package static func timing(ofFragment bytes: [UInt8]) throws -> FragmentTiming {
        let track = try TrackFragment(bytes)
        let field = track.field
        guard let tfhd = track.boxes.first(where: { $0.type == "tfhd" }),
            let tfdt = track.boxes.first(where: { $0.type == "tfdt" })
        else { throw MediaError(.invalidInput, "the traf box lacks a tfhd or a tfdt box") }
        // §8.8.12: version 1 has a 64-bit time.
        let tfdtStart = track.contentStart(of: tfdt)
        let baseDecodeTime =
            try field(tfdtStart) >> 24 == 1
            ? Int64(field(tfdtStart + 4)) << 32 | Int64(field(tfdtStart + 8)) : Int64(field(tfdtStart + 4))
        // §8.8.7: the default sample duration follows the base data offset and the description index.
        var cursor = track.contentStart(of: tfhd)
        let tfhdFlags = try field(cursor) & 0xFF_FFFF
        cursor += 8
        if tfhdFlags & 0x01 != 0 { cursor += 8 }
        if tfhdFlags & 0x02 != 0 { cursor += 4 }
        let defaultDuration = tfhdFlags & 0x08 != 0 ? Int64(try field(cursor)) : nil
        var sampleCount = 0
        var duration: Int64 = 0
        var leadingCompositionOffset: Int64?
        var deepestNegativeCompositionOffset: Int64 = 0
        // §8.8.8: each trun's optional fields, then one record per sample.
        for trun in track.boxes where trun.type == "trun" {
            let records = try TrunRecords(track, trun)
            let count = records.count
            // Only a version 1 box has signed offsets.
            if records.compositionOffset(0) != nil, try field(track.contentStart(of: trun)) >> 24 == 1 {
                for sample in 0..<count {
                    let offset = Int64(Int32(bitPattern: try field(records.compositionOffset(sample)!)))
                    deepestNegativeCompositionOffset = min(deepestNegativeCompositionOffset, offset)
                }
            }
            if leadingCompositionOffset == nil, count > 0, let at = records.compositionOffset(0) {
                let signed = try field(track.contentStart(of: trun)) >> 24 == 1
                let bits = try field(at)
                leadingCompositionOffset = signed ? Int64(Int32(bitPattern: bits)) : Int64(bits)
            }
            if records.flags & 0x100 != 0 {
                for sample in 0..<count { duration &+= Int64(try field(records.duration(sample)!)) }
            } else if let defaultDuration {
                // No per-sample durations: no loop over a count a damaged box may make huge, nor an overflow.
                let (total, overflow) = defaultDuration.multipliedReportingOverflow(by: Int64(count))
                guard !overflow else { throw MediaError(.invalidInput, "the trun box lists \(count) samples") }
                duration &+= total
            } else {
                throw MediaError(.invalidInput, "the fragment gives its samples no duration")
            }
            sampleCount += count
        }
        return FragmentTiming(
            baseDecodeTime: baseDecodeTime,
            sampleCount: sampleCount,
            duration: duration,
            leadingCompositionOffset: leadingCompositionOffset ?? 0,
            deepestNegativeCompositionOffset: deepestNegativeCompositionOffset
        )
    }

    /// Moves every sample of a fragment `offset` (track timescale) earlier in presentation, leaving decode times
    /// as they are: each `trun`'s composition offsets lose `offset` and the box becomes version 1, whose offsets
    /// are signed (ISO/IEC 14496-12 §8.8.8).
    ///
    /// Only for tasks planned before `TaskSpec.presentationDelay` (their retries must match what was accepted):
    /// they gave B-frames exact timing with no edit list this way. A sample's decode time is the presentation time
    /// of the sample that many places along in presentation order, so a fragment's `tfdt` is its first picture's
    /// presentation time and B-frames present before they decode. libavformat refuses a packet that presents
    /// before it decodes, so the chunk encoder muxes every presentation time `offset` late and this takes it back.
    /// New jobs are shown the job's delay late instead and keep every offset zero or more (`PresentationDelay`).
    package static func shiftCompositionOffsets(inFragment bytes: inout [UInt8], by offset: Int64) throws {
        guard offset != 0 else { return }
        let track = try TrackFragment(bytes)
        var shifted = 0
        for trun in track.boxes where trun.type == "trun" {
            let records = try TrunRecords(track, trun)
            guard records.flags & 0x800 != 0 else {
                throw MediaError(.encodingFailed, "a trun box has no composition offsets to shift by \(offset)")
            }
            // Version 0 offsets are unsigned, version 1 signed: the same bits below 2^31, which muxed ones are.
            for sample in 0..<records.count {
                let at = records.compositionOffset(sample)!
                let value = Int64(Int32(bitPattern: try track.field(at))) - offset
                guard let moved = Int32(exactly: value) else {
                    throw MediaError(.encodingFailed, "a composition offset of \(value) does not fit a trun box")
                }
                let bits = UInt32(bitPattern: moved)
                for byte in 0..<4 { bytes[at + byte] = UInt8((bits >> (24 - 8 * UInt32(byte))) & 0xFF) }
            }
            bytes[track.contentStart(of: trun)] = 1
            shifted += 1
        }
        guard shifted > 0 else { throw MediaError(.encodingFailed, "the fragment has no trun box to shift") }
    }

    /// Where a `trun`'s per-sample records are (§8.8.8: the optional data offset and first sample flags come
    /// first), checked to end inside the moof.
    private struct TrunRecords {
        var flags: UInt32
        var count: Int
        var first: Int
        var size: Int

        init(_ track: TrackFragment, _ trun: Box) throws {
            let start = track.contentStart(of: trun)
            self.flags = try track.field(start) & 0xFF_FFFF
            self.count = Int(try track.field(start + 4))
            var cursor = start + 8
            if self.flags & 0x01 != 0 { cursor += 4 }
            if self.flags & 0x04 != 0 { cursor += 4 }
            self.first = cursor
            let flags = self.flags
            self.size = [0x100, 0x200, 0x400, 0x800].filter { flags & UInt32($0) != 0 }.count * 4
            guard self.count >= 0, cursor + self.count * self.size <= track.moof.upperBound else {
                throw MediaError(.invalidInput, "the trun box lists more samples than the moof box holds")
            }
        }

        /// Where sample `index`'s composition offset is, if the box has them.
        func compositionOffset(_ index: Int) -> Int? {
            let flags = self.flags
            guard flags & 0x800 != 0 else { return nil }
            return self.first + index * self.size + [0x100, 0x200, 0x400].filter { flags & UInt32($0) != 0 }.count * 4
        }

        /// Where sample `index`'s duration is, if the box has them.
        func duration(_ index: Int) -> Int? { self.flags & 0x100 != 0 ? self.first + index * self.size : nil }
    }

    /// The first `traf` of the `moof` that starts a fragment (optionally after `styp`/`sidx`/`prft`), and reads of
    /// its fields that never go past the moof. Only the boxes up to the end of the moof need to be present.
    private struct TrackFragment {
        let bytes: [UInt8]
        let moof: Range<Int>
        let trafStart: Int
        /// The traf's children, their ranges relative to the traf's content.
        let boxes: [Box]

        init(_ bytes: [UInt8]) throws {
            var offset = 0
            var moof: Range<Int>?
            while moof == nil, offset + 8 <= bytes.count {
                let size = Int(MP4Boxes.uint32(bytes, offset))
                let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
                guard size >= 8 else { break }
                if type == "moof" { moof = offset..<(offset + size) }
                guard ["styp", "sidx", "prft", "moof"].contains(type) else { break }
                offset += size
            }
            guard let moof, moof.upperBound <= bytes.count else {
                throw MediaError(.invalidInput, "the fragment does not start with a complete moof box")
            }
            let children = { (range: Range<Int>) in try MP4Boxes.topLevelBoxes(Array(bytes[range])) }
            guard let traf = try children((moof.lowerBound + 8)..<moof.upperBound).first(where: { $0.type == "traf" })
            else { throw MediaError(.invalidInput, "the moof box has no traf box") }
            self.bytes = bytes
            self.moof = moof
            self.trafStart = moof.lowerBound + 8 + traf.range.lowerBound
            self.boxes = try children((self.trafStart + 8)..<(self.trafStart + traf.range.count))
        }

        /// Where a child box's fields start (its version and flags), past its size and type.
        func contentStart(of box: Box) -> Int { self.trafStart + 8 + box.range.lowerBound + 8 }

        /// The 32-bit field at `offset`: a damaged box must not read past the moof.
        func field(_ offset: Int) throws -> UInt32 {
            guard offset >= self.moof.lowerBound, offset + 4 <= self.moof.upperBound else {
                throw MediaError(.invalidInput, "the moof box ends inside one of its boxes")
            }
            return MP4Boxes.uint32(self.bytes, offset)
        }
    }

    /// The first track's timescale (units per second) from the `mdhd` box of an init segment.
    package static func timescale(initSegment bytes: [UInt8]) -> Int64? {
        guard let mdhd = self.find("mdhd", in: bytes), mdhd + 12 <= bytes.count else { return nil }
        // §8.4.2: version 1 has 64-bit creation and modification times before the timescale.
        let offset = mdhd + 8 + (bytes[mdhd + 8] == 1 ? 20 : 12)
        guard offset + 4 <= bytes.count else { return nil }
        let timescale = Int64(self.uint32(bytes, offset))
        return timescale > 0 ? timescale : nil
    }

    /// The RFC 6381 codec string of the first video or audio sample entry in an init segment:
    /// `avc1.PPCCLL` from the avcC box, `mp4a.40.N` from the esds audio object type.
    package static func codecString(initSegment bytes: [UInt8]) -> String? {
        if let avcC = self.find("avcC", in: bytes), avcC + 8 + 4 <= bytes.count {
            let payload = avcC + 8
            let profile = bytes[payload + 1]
            let compatibility = bytes[payload + 2]
            let level = bytes[payload + 3]
            return "avc1." + [profile, compatibility, level].map { self.hex($0) }.joined()
        }
        if let info = self.decoderSpecificInfo(in: bytes) {
            return "mp4a.40.\(bytes[info] >> 3)"
        }
        return nil
    }

    /// The audio object type, sample rate and channel count of an init segment's AAC track, from the
    /// AudioSpecificConfig in its esds box (ISO/IEC 14496-3 §1.6.2.1: 5 bits of object type, 4 of sampling frequency
    /// index, or 15 and a 24-bit rate, then 4 of channel configuration). Not from the `mp4a` sample entry, whose
    /// channel count muxers write as 2 whatever the track holds. Nil without one.
    package static func audioSpecificConfig(
        initSegment bytes: [UInt8]
    ) -> (objectType: Int, sampleRate: Int, channels: Int)? {
        guard let info = self.decoderSpecificInfo(in: bytes), info + 2 <= bytes.count else { return nil }
        var bits = BitReader(bytes: bytes, offset: info)
        let objectType = bits.read(5)
        guard objectType != 31 else { return nil }  // An escaped object type: not AAC-LC, not read further.
        let frequencyIndex = bits.read(4)
        let rates = [
            96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
        ]
        let sampleRate =
            frequencyIndex == 15 ? bits.read(24) : (frequencyIndex < rates.count ? rates[frequencyIndex] : 0)
        return (objectType, sampleRate, bits.read(4))
    }

    /// Reads bits most significant first; bits past the end read as zero.
    private struct BitReader {
        let bytes: [UInt8]
        var position: Int

        init(bytes: [UInt8], offset: Int) {
            self.bytes = bytes
            self.position = offset * 8
        }

        mutating func read(_ count: Int) -> Int {
            var value = 0
            for _ in 0..<count {
                let byte = self.position / 8
                let bit = byte < self.bytes.count ? Int(self.bytes[byte] >> (7 - UInt8(self.position % 8))) & 1 : 0
                value = value << 1 | bit
                self.position += 1
            }
            return value
        }
    }

    /// The offset of the DecoderSpecificInfo (the AudioSpecificConfig of AAC) in an init segment's esds box: full box
    /// header, then ES_Descriptor (tag 3) > DecoderConfigDescriptor (tag 4) > DecoderSpecificInfo (tag 5).
    private static func decoderSpecificInfo(in bytes: [UInt8]) -> Int? {
        guard let esds = self.find("esds", in: bytes) else { return nil }
        var offset = esds + 12
        let end = min(bytes.count, esds + Int(self.uint32(bytes, esds)))
        while offset < end {
            let tag = bytes[offset]
            offset += 1
            var length = 0
            for _ in 0..<4 where offset < end {
                let byte = bytes[offset]
                offset += 1
                length = length << 7 | Int(byte & 0x7F)
                if byte & 0x80 == 0 { break }
            }
            switch tag {
            case 3: offset += 3  // ES_ID and flags; then nested descriptors
            case 4: offset += 13  // objectType, streamType, buffer size, bitrates; then nested
            case 5: return offset < end ? offset : nil
            default: offset += length
            }
        }
        return nil
    }

    private static func find(_ type: String, in bytes: [UInt8]) -> Int? {
        let pattern = Array(type.utf8)
        guard bytes.count >= 8 else { return nil }
        for index in 4..<(bytes.count - 3) where bytes[index] == pattern[0] {
            if bytes[index + 1] == pattern[1], bytes[index + 2] == pattern[2], bytes[index + 3] == pattern[3] {
                return index - 4
            }
        }
        return nil
    }

    private static func uint32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}
