import CFFmpeg
import FarmFormats
import FarmMedia
import FarmTestSupport
import Foundation
import Testing

@Suite("Scaling pictures for the encoders, real libav")
struct ScalerTests {
    /// A 240p rung of a 480p source is 426 pixels wide (213 in chroma), so its rows are padded to the alignment
    /// libav allocates with. Those padding bytes used to be whatever the allocator's memory held, and libx264 reads
    /// some of them: the same chunk encoded twice by one agent now and then gave different bytes (FaultTests saw it
    /// as a rare mismatch with the clean run). Every byte of every row must be defined: the row's last pixel
    /// repeated, upright or turned.
    @Test(arguments: [0, 90])
    func everyByteOfAScaledPictureIsDefined(rotation: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        try Fixtures.makeClip(at: source, seconds: 1, width: 854, height: 480, audio: false)
        let input = try InputFile(path: source)
        let index = try #require(input.bestStream(AVMEDIA_TYPE_VIDEO))
        let decoder = try CodecDecoder(stream: input.stream(index), path: source, threads: 1)
        let packet = Packet()
        let decoded = Frame()
        var scaler: UprightScaler?
        var pictures = 0
        var paddedRows = 0
        var undefined: [String] = []
        while pictures < 5, try input.read(into: packet) {
            defer { packet.unref() }
            try decoder.send(packet)
            while try decoder.receive(into: decoded) {
                defer { decoded.unref() }
                if scaler == nil {
                    scaler = try UprightScaler(
                        from: decoded,
                        width: 426,
                        height: 240,
                        rotation: rotation,
                        format: AV_PIX_FMT_YUV420P
                    )
                }
                let scaled = try scaler!.scale(decoded)
                pictures += 1
                for plane in 0..<3 {
                    let width = plane == 0 ? scaled.width : (scaled.width + 1) / 2
                    let height = plane == 0 ? scaled.height : (scaled.height + 1) / 2
                    for row in 0..<height {
                        let bytes = scaled.rowBytes(plane: plane, row: row)
                        guard bytes.count > width else { continue }
                        paddedRows += 1
                        let padding = bytes[width...]
                        if !padding.allSatisfy({ $0 == bytes[width - 1] }) {
                            undefined.append(
                                "plane \(plane) row \(row): \(Array(padding.prefix(8))) after \(bytes[width - 1])"
                            )
                        }
                    }
                }
            }
        }
        #expect(pictures == 5)
        let undefinedRows = undefined.count
        #expect(undefinedRows == 0, "rows that end in other bytes than their last pixel: \(undefined.prefix(3))")
        #expect(paddedRows > 0, "the rows are padded, so the check above checked something")
    }
}
