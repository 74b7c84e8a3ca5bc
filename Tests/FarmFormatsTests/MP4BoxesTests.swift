import FarmFormats
import Testing

@Suite("MP4Boxes")
struct MP4BoxesTests {
    /// One ISO BMFF box: 4-byte big-endian size (header included), 4-character type, payload.
    static func box(_ type: String, _ payload: [UInt8] = []) -> [UInt8] {
        precondition(type.utf8.count == 4)
        return bigEndian(UInt32(8 + payload.count)) + Array(type.utf8) + payload
    }

    /// A full box: a box whose payload starts with a version byte and three flag bytes.
    static func fullBox(_ type: String, _ payload: [UInt8]) -> [UInt8] {
        box(type, [0, 0, 0, 0] + payload)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// An MPEG-4 descriptor (ISO 14496-1): tag, length, content. `longLength` writes the length in four bytes with
    /// continuation bits, as FFmpeg's muxer does.
    static func descriptor(_ tag: UInt8, _ content: [UInt8], longLength: Bool = false) -> [UInt8] {
        precondition(content.count < 128)
        let length: [UInt8] = longLength ? [0x80, 0x80, 0x80, UInt8(content.count)] : [UInt8(content.count)]
        return [tag] + length + content
    }

    static let ftyp = box("ftyp", Array("isom".utf8) + [0, 0, 2, 0] + Array("isomiso6mp41".utf8))

    /// A moov whose first sample entry is `entry`, nested as a muxer writes it.
    static func moov(sampleEntry entry: [UInt8]) -> [UInt8] {
        let stsd = fullBox("stsd", bigEndian(1) + entry)
        return box(
            "moov",
            fullBox("mvhd", [UInt8](repeating: 0, count: 96)) + box("trak", box("mdia", box("minf", box("stbl", stsd))))
        )
    }

    /// An H.264 init segment whose avcC record starts with `record`.
    static func avcInit(record: [UInt8]) -> [UInt8] {
        // VisualSampleEntry: 6 reserved, data reference index, 70 bytes of pre-defined/size/resolution fields.
        let avc1 = box("avc1", [UInt8](repeating: 0, count: 78) + box("avcC", record))
        return ftyp + moov(sampleEntry: avc1)
    }

    /// An AAC init segment: mp4a sample entry > esds > ES_Descriptor > DecoderConfigDescriptor > DecoderSpecificInfo.
    static func aacInit(audioSpecificConfig: [UInt8], longLengths: Bool = false) -> [UInt8] {
        let decoderSpecificInfo = descriptor(5, audioSpecificConfig, longLength: longLengths)
        // objectTypeIndication 0x40 (MPEG-4 audio), streamType 5 << 2 | 1, bufferSizeDB, maxBitrate, avgBitrate.
        let decoderConfig = descriptor(
            4,
            [0x40, 0x15, 0x00, 0x03, 0x00] + bigEndian(128_000) + bigEndian(128_000) + decoderSpecificInfo,
            longLength: longLengths
        )
        let slConfig = descriptor(6, [0x02], longLength: longLengths)
        // ES_ID 1, no stream dependence, URL or OCR flags.
        let esDescriptor = descriptor(3, [0x00, 0x01, 0x00] + decoderConfig + slConfig, longLength: longLengths)
        let esds = fullBox("esds", esDescriptor)
        // AudioSampleEntry: 6 reserved, data reference index, 20 bytes of version/channels/sample size/rate.
        let mp4a = box("mp4a", [UInt8](repeating: 0, count: 28) + esds)
        return ftyp + moov(sampleEntry: mp4a)
    }

    @Test("top-level boxes: types and byte ranges, nested boxes not listed")
    func topLevelBoxes() throws {
        let moov = Self.moov(sampleEntry: Self.box("avc1", [UInt8](repeating: 0, count: 78)))
        let moof = Self.box("moof", Self.fullBox("mfhd", Self.bigEndian(1)))
        let mdat = Self.box("mdat", [1, 2, 3, 4, 5])
        let bytes = Self.ftyp + moov + moof + mdat
        let boxes = try MP4Boxes.topLevelBoxes(bytes)
        #expect(boxes.map(\.type) == ["ftyp", "moov", "moof", "mdat"])
        let a = Self.ftyp.count
        let b = a + moov.count
        let c = b + moof.count
        #expect(boxes.map(\.range) == [0..<a, a..<b, b..<c, c..<bytes.count])
    }

    @Test("no bytes: no boxes")
    func empty() throws {
        #expect(try MP4Boxes.topLevelBoxes([]).isEmpty)
    }

    @Test("a size of 0 runs to the end of the bytes; a size of 1 reads a 64-bit size")
    func specialSizes() throws {
        let largesize = Self.bigEndian(1) + Array("free".utf8) + Self.bigEndian(0) + Self.bigEndian(20) + [9, 9, 9, 9]
        let toEnd = Self.bigEndian(0) + Array("mdat".utf8) + [1, 2, 3]
        let bytes = Self.ftyp + largesize + toEnd
        let boxes = try MP4Boxes.topLevelBoxes(bytes)
        #expect(boxes.map(\.type) == ["ftyp", "free", "mdat"])
        let a = Self.ftyp.count
        #expect(boxes.map(\.range) == [0..<a, a..<(a + 20), (a + 20)..<bytes.count])
    }

    @Test("bytes that end inside a box header are refused, naming the byte")
    func truncatedHeader() throws {
        let bytes = Self.ftyp + [0, 0, 0, 16, 0x6D]
        let error = try #require(throws: MediaError.self) { try MP4Boxes.topLevelBoxes(bytes) }
        #expect(error.description.contains("ends inside a box header at byte \(Self.ftyp.count)"), "\(error)")
    }

    @Test("a box longer than the bytes left is refused, naming the box and its size")
    func truncatedBox() throws {
        let mdat = Self.box("mdat", [UInt8](repeating: 7, count: 100))
        let bytes = Self.ftyp + mdat.prefix(60)
        let error = try #require(throws: MediaError.self) { try MP4Boxes.topLevelBoxes(bytes) }
        #expect(error.description.contains("mdat"), "\(error)")
        #expect(error.description.contains("bad size 108"), "\(error)")
        #expect(error.description.contains("at byte \(Self.ftyp.count)"), "\(error)")
    }

    @Test("a box size smaller than its own header is refused", arguments: [UInt32(2), 7])
    func sizeBelowHeader(size: UInt32) throws {
        let bytes = Self.ftyp + Self.bigEndian(size) + Array("moof".utf8) + [UInt8](repeating: 0, count: 16)
        let error = try #require(throws: MediaError.self) { try MP4Boxes.topLevelBoxes(bytes) }
        #expect(error.description.contains("moof"), "\(error)")
        #expect(error.description.contains("bad size \(size)"), "\(error)")
    }

    @Test("a 64-bit size whose header is cut off is refused")
    func truncatedLargesize() throws {
        let bytes = Self.ftyp + Self.bigEndian(1) + Array("mdat".utf8) + [0, 0, 0]
        let error = try #require(throws: MediaError.self) { try MP4Boxes.topLevelBoxes(bytes) }
        #expect(error.description.contains("mdat truncated"), "\(error)")
    }

    @Test("fragments: the init segment is ftyp+moov; each moof+mdat (with a leading styp or sidx) is one segment")
    func fragments() throws {
        let moov = Self.moov(sampleEntry: Self.box("avc1", [UInt8](repeating: 0, count: 78)))
        let styp = Self.box("styp", Array("msdh".utf8) + [0, 0, 0, 0] + Array("msdhmsix".utf8))
        let sidx = Self.fullBox("sidx", [UInt8](repeating: 0, count: 24))
        let moof = Self.box("moof", Self.fullBox("mfhd", Self.bigEndian(1)))
        let mdat = Self.box("mdat", [UInt8](repeating: 0xAB, count: 33))
        let mfra = Self.box("mfra", Self.fullBox("mfro", Self.bigEndian(16)))

        let initSegment = Self.ftyp + moov
        let first = styp + moof + mdat
        let second = moof + mdat
        let third = styp + sidx + moof + mdat
        let bytes = initSegment + first + second + third + mfra

        let fragments = try MP4Boxes.fragments(bytes)
        #expect(fragments.initSegment == 0..<initSegment.count)
        let a = initSegment.count
        let b = a + first.count
        let c = b + second.count
        let d = c + third.count
        #expect(fragments.segments == [a..<b, b..<c, c..<d])
        // The segments' bytes are exactly what was written, and the trailing mfra is in none of them.
        #expect(Array(bytes[fragments.segments[2]]) == third)
        #expect(d == bytes.count - mfra.count)
    }

    @Test("fragments: an mdat without a moof before it is not a segment")
    func strayMdat() throws {
        let moov = Self.moov(sampleEntry: Self.box("avc1", [UInt8](repeating: 0, count: 78)))
        let moof = Self.box("moof", Self.fullBox("mfhd", Self.bigEndian(1)))
        let mdat = Self.box("mdat", [1, 2, 3])
        let head = Self.ftyp + moov + mdat
        let bytes = head + moof + mdat
        let fragments = try MP4Boxes.fragments(bytes)
        #expect(fragments.segments == [head.count..<bytes.count])
    }

    @Test("fragments: output without a moov is refused")
    func noMoov() throws {
        let bytes = Self.ftyp + Self.box("moof") + Self.box("mdat", [1])
        let error = try #require(throws: MediaError.self) { try MP4Boxes.fragments(bytes) }
        #expect(error.description.contains("no moov"), "\(error)")
    }

    @Test("fragments: a damaged box is refused, not skipped")
    func fragmentsOfTruncatedOutput() throws {
        let moov = Self.moov(sampleEntry: Self.box("avc1", [UInt8](repeating: 0, count: 78)))
        let mdat = Self.box("mdat", [UInt8](repeating: 1, count: 40))
        let bytes = Self.ftyp + moov + Self.box("moof") + mdat.dropLast(1)
        #expect(throws: MediaError.self) { try MP4Boxes.fragments(bytes) }
    }

    @Test("codec string of an H.264 init segment: avc1 + profile, compatibility, level from avcC in hex")
    func avcCodecString() {
        let record: [UInt8] = [1, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1F]
        #expect(MP4Boxes.codecString(initSegment: Self.avcInit(record: record)) == "avc1.64001F")
        let baseline: [UInt8] = [1, 0x42, 0xC0, 0x0D, 0xFF, 0xE1]
        #expect(MP4Boxes.codecString(initSegment: Self.avcInit(record: baseline)) == "avc1.42C00D")
    }

    @Test("codec string of an AAC init segment: mp4a.40 + the audio object type", arguments: [false, true])
    func aacCodecString(longLengths: Bool) {
        // AudioSpecificConfig 0x12 0x10: object type 2 (AAC-LC), 44.1 kHz, stereo.
        let lc = Self.aacInit(audioSpecificConfig: [0x12, 0x10], longLengths: longLengths)
        #expect(MP4Boxes.codecString(initSegment: lc) == "mp4a.40.2")
        // 0x2B 0x92: object type 5 (HE-AAC).
        let he = Self.aacInit(audioSpecificConfig: [0x2B, 0x92, 0x08, 0x00], longLengths: longLengths)
        #expect(MP4Boxes.codecString(initSegment: he) == "mp4a.40.5")
    }

    @Test("AudioSpecificConfig: object type, sample rate (indexed or explicit) and channel configuration")
    func audioSpecificConfig() {
        // 00010 0100 0010 000: AAC-LC, index 4 (44.1 kHz), 2 channels.
        let stereo = Self.aacInit(audioSpecificConfig: [0x12, 0x10])
        #expect(MP4Boxes.audioSpecificConfig(initSegment: stereo)! == (2, 44_100, 2))
        // 00010 0011 0001 000: AAC-LC, index 3 (48 kHz), 1 channel.
        let mono = Self.aacInit(audioSpecificConfig: [0x11, 0x88])
        #expect(MP4Boxes.audioSpecificConfig(initSegment: mono)! == (2, 48_000, 1))
        // 00010 0011 0110 000: 6 channels (5.1).
        let surround = Self.aacInit(audioSpecificConfig: [0x11, 0xB0])
        #expect(MP4Boxes.audioSpecificConfig(initSegment: surround)! == (2, 48_000, 6))
        // 00010 1111 then 24 bits of rate (0x00BB80: 48000) then 0010: an explicit rate.
        let explicit = Self.aacInit(audioSpecificConfig: [0x17, 0x80, 0x5D, 0xC0, 0x10])
        #expect(MP4Boxes.audioSpecificConfig(initSegment: explicit)! == (2, 48_000, 2))
        #expect(MP4Boxes.audioSpecificConfig(initSegment: Self.ftyp) == nil)
    }

    @Test("codec string: nil for an init segment with neither avcC nor esds, or a cut-off esds")
    func noCodecString() {
        let hevc = Self.ftyp + Self.moov(sampleEntry: Self.box("hvc1", [UInt8](repeating: 0, count: 78)))
        #expect(MP4Boxes.codecString(initSegment: hevc) == nil)
        #expect(MP4Boxes.codecString(initSegment: []) == nil)
        // An esds whose descriptors stop before the DecoderSpecificInfo.
        let esds = Self.fullBox("esds", Self.descriptor(3, [0x00, 0x01, 0x00]))
        let cut = Self.ftyp + Self.moov(sampleEntry: Self.box("mp4a", [UInt8](repeating: 0, count: 28) + esds))
        #expect(MP4Boxes.codecString(initSegment: cut) == nil)
    }

    /// A fragment as FFmpeg's mp4 muxer writes one: moof (mfhd, traf (tfhd, tfdt, trun)) then mdat. The tfhd gives a
    /// default size and non-sync flags; the trun gives the data offset and, when `firstFlags` is set, the first
    /// sample's own flags.
    static func fragment(sizes: [UInt32], firstFlags: UInt32?) -> [UInt8] {
        // tfhd: default-base-is-moof | default-sample-size | default-sample-flags; track 1.
        let tfhd = box("tfhd", [0x00, 0x02, 0x00, 0x30] + bigEndian(1) + bigEndian(sizes[1]) + bigEndian(0x0101_0000))
        let tfdt = fullBox("tfdt", bigEndian(0))
        func trun(dataOffset: UInt32) -> [UInt8] {
            // data-offset | first-sample-flags (optional) | sample-size.
            let flags: UInt32 = 0x201 | (firstFlags == nil ? 0 : 0x04)
            return box(
                "trun",
                bigEndian(flags) + bigEndian(UInt32(sizes.count)) + bigEndian(dataOffset)
                    + (firstFlags.map(bigEndian) ?? []) + sizes.flatMap(bigEndian)
            )
        }
        let mfhd = fullBox("mfhd", bigEndian(1))
        let moofSize = 8 + mfhd.count + 8 + tfhd.count + tfdt.count + trun(dataOffset: 0).count
        let moof = box("moof", mfhd + box("traf", tfhd + tfdt + trun(dataOffset: UInt32(moofSize + 8))))
        let data = sizes.enumerated().flatMap { index, size in [UInt8](repeating: UInt8(index + 1), count: Int(size)) }
        return moof + box("mdat", data)
    }

    @Test("leading sample: the first sample's bytes and sync flag, from the trun and the tfhd defaults")
    func leadingSample() throws {
        let sync = Self.fragment(sizes: [500, 40, 30], firstFlags: 0x0200_0000)
        let sample = try MP4Boxes.leadingSample(ofFragment: sync)
        let boxes = try MP4Boxes.topLevelBoxes(sync)
        #expect(boxes.map(\.type) == ["moof", "mdat"])
        // The sample is the mdat's first 500 bytes (all 1s in this fixture), right after its header.
        #expect(sample.data == (boxes[1].range.lowerBound + 8)..<(boxes[1].range.lowerBound + 508))
        #expect(sync[sample.data].allSatisfy { $0 == 1 } && sync[sample.data.upperBound] == 2)
        #expect(sample.isSync)

        // Without first-sample flags, the tfhd's default (non-sync) applies.
        #expect(
            try MP4Boxes.leadingSample(ofFragment: Self.fragment(sizes: [500, 40], firstFlags: nil)).isSync == false
        )

        // A leading styp moves everything; only the moof needs to be there.
        let styp = Self.box("styp", Array("msdh".utf8) + [0, 0, 0, 0])
        let shifted = try MP4Boxes.leadingSample(
            ofFragment: Array((styp + sync).prefix(styp.count + boxes[0].range.count))
        )
        #expect(shifted.data == (sample.data.lowerBound + styp.count)..<(sample.data.upperBound + styp.count))
    }

    @Test("leading sample: a fragment without a whole moof is refused")
    func leadingSampleOfDamagedFragment() {
        let fragment = Self.fragment(sizes: [500, 40], firstFlags: 0x0200_0000)
        #expect(throws: MediaError.self) { try MP4Boxes.leadingSample(ofFragment: Array(fragment.prefix(40))) }
        #expect(throws: MediaError.self) { try MP4Boxes.leadingSample(ofFragment: Array(fragment.suffix(600))) }
    }

    /// A fragment whose trun gives each sample's duration (or, with `durations` nil, a tfhd default of 512), after a
    /// version-1 tfdt at `decodeTime`, split over two truns as some muxers write.
    static func timedFragment(decodeTime: UInt64, durations: [UInt32]?, samples: Int) -> [UInt8] {
        let tfhdFlags: UInt32 = durations == nil ? 0x02_0008 : 0x02_0000
        let tfhd = box("tfhd", bigEndian(tfhdFlags) + bigEndian(1) + (durations == nil ? bigEndian(512) : []))
        let tfdt = box(
            "tfdt",
            [1, 0, 0, 0] + bigEndian(UInt32(decodeTime >> 32)) + bigEndian(UInt32(decodeTime & 0xFFFF_FFFF))
        )
        func trun(_ range: Range<Int>) -> [UInt8] {
            // sample-duration and sample-size per sample, when durations are given; sample-size alone otherwise.
            let flags: UInt32 = durations == nil ? 0x200 : 0x300
            let records = range.flatMap { index in (durations.map { bigEndian($0[index]) } ?? []) + bigEndian(100) }
            return box("trun", bigEndian(flags) + bigEndian(UInt32(range.count)) + records)
        }
        let half = samples / 2
        let traf = box("traf", tfhd + tfdt + trun(0..<half) + trun(half..<samples))
        return box("moof", fullBox("mfhd", bigEndian(1)) + traf)
            + box("mdat", [UInt8](repeating: 0, count: 100 * samples))
    }

    /// A fragment whose one trun gives each sample a duration of 512, a size of 100 and `offsets` as composition
    /// offsets, the trun of `version`.
    static func offsetFragment(_ offsets: [Int32], version: UInt8 = 0) -> [UInt8] {
        let tfhd = box("tfhd", bigEndian(0x02_0000) + bigEndian(1))
        let tfdt = box("tfdt", [1, 0, 0, 0] + bigEndian(0) + bigEndian(25_600))
        let records = offsets.flatMap { bigEndian(512) + bigEndian(100) + bigEndian(UInt32(bitPattern: $0)) }
        let trun = box(
            "trun",
            [version] + Array(bigEndian(0xB00).suffix(3)) + bigEndian(UInt32(offsets.count)) + records
        )
        return box("moof", fullBox("mfhd", bigEndian(1)) + box("traf", tfhd + tfdt + trun))
            + box("mdat", [UInt8](repeating: 0, count: 100 * offsets.count))
    }

    @Test("composition offsets shifted: a version 1 trun whose B-frames present before they decode, sizes unchanged")
    func compositionOffsetsShifted() throws {
        let delay: Int32 = 1 << 24
        // I P B B as muxed `delay` late: I shows when it decodes, P two frames later, the Bs one frame earlier.
        var fragment = Self.offsetFragment([delay, delay + 1024, delay - 512, delay - 512])
        let before = fragment
        #expect(try MP4Boxes.timing(ofFragment: fragment).leadingCompositionOffset == Int64(delay))
        #expect(try MP4Boxes.timing(ofFragment: fragment).deepestNegativeCompositionOffset == 0)
        try MP4Boxes.shiftCompositionOffsets(inFragment: &fragment, by: Int64(delay))
        #expect(fragment.count == before.count)
        #expect(fragment == Self.offsetFragment([0, 1024, -512, -512], version: 1))
        let timing = try MP4Boxes.timing(ofFragment: fragment)
        #expect(timing.leadingCompositionOffset == 0 && timing.baseDecodeTime == 25_600 && timing.duration == 2048)
        #expect(timing.deepestNegativeCompositionOffset == -512, "the B-frames show before they decode")
        // Nothing to shift: unchanged, even without offsets in the box.
        var plain = Self.timedFragment(decodeTime: 0, durations: [512, 512], samples: 2)
        let original = plain
        try MP4Boxes.shiftCompositionOffsets(inFragment: &plain, by: 0)
        #expect(plain == original)
        #expect(throws: MediaError.self) { try MP4Boxes.shiftCompositionOffsets(inFragment: &plain, by: 512) }
        // An offset that leaves 32 bits is refused, not wrapped.
        var far = Self.offsetFragment([0, 1])
        #expect(throws: MediaError.self) {
            try MP4Boxes.shiftCompositionOffsets(inFragment: &far, by: Int64(Int32.max) + 2)
        }
    }

    @Test("fragment timing: tfdt (64-bit), every trun's samples, per-sample or default durations")
    func fragmentTiming() throws {
        let decodeTime: UInt64 = (1 << 33) + 7
        let timed = try MP4Boxes.timing(
            ofFragment: Self.timedFragment(decodeTime: decodeTime, durations: [512, 512, 1024, 256, 512], samples: 5)
        )
        #expect(timed.baseDecodeTime == Int64(decodeTime) && timed.sampleCount == 5 && timed.duration == 2816)
        let defaulted = try MP4Boxes.timing(ofFragment: Self.timedFragment(decodeTime: 0, durations: nil, samples: 6))
        #expect(defaulted.baseDecodeTime == 0 && defaulted.sampleCount == 6 && defaulted.duration == 3072)
    }

    @Test("fragment timing: no duration anywhere, or a trun longer than its moof, is refused")
    func fragmentTimingOfDamagedFragments() throws {
        // The leading-sample fixture has sizes but no durations, in the trun or the tfhd.
        let error = try #require(throws: MediaError.self) {
            try MP4Boxes.timing(ofFragment: Self.fragment(sizes: [500, 40], firstFlags: nil))
        }
        #expect(error.description.contains("no duration"), "\(error)")
        var cut = Self.timedFragment(decodeTime: 0, durations: [512, 512, 512, 512], samples: 4)
        // The second trun claims 200 samples.
        let secondTrun = try #require(
            cut.indices.dropLast(4).last { cut[$0..<($0 + 4)].elementsEqual(Array("trun".utf8)) }
        )
        cut.replaceSubrange((secondTrun + 8)..<(secondTrun + 12), with: Self.bigEndian(200))
        #expect(throws: MediaError.self) { try MP4Boxes.timing(ofFragment: cut) }
    }

    @Test("timescale of an init segment from its mdhd, version 0 and 1")
    func initTimescale() {
        let version0 = Self.box("mdhd", [0, 0, 0, 0] + Self.bigEndian(1) + Self.bigEndian(2) + Self.bigEndian(48_000))
        #expect(MP4Boxes.timescale(initSegment: Self.ftyp + Self.box("moov", version0)) == 48_000)
        let version1 = Self.box("mdhd", [1, 0, 0, 0] + [UInt8](repeating: 0, count: 16) + Self.bigEndian(12_800))
        #expect(MP4Boxes.timescale(initSegment: Self.ftyp + Self.box("moov", version1)) == 12_800)
        #expect(MP4Boxes.timescale(initSegment: Self.ftyp) == nil)
    }
}
