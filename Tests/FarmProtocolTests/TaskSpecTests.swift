import FarmProtocol
import Foundation
import Testing

@Suite("Task spec timestamps")
struct TaskSpecTests {
    /// A source that starts before zero (an unwrapped MPEG-TS clock) is sent with every time moved so the job's
    /// first frame is at zero; times relative to the first frame, which decide the output, do not change.
    @Test func shiftingMovesEveryTimeAndKeepsTheOutputTimeline() {
        var spec = ProtocolSamples.spec
        #expect(spec.nonNegativeShift() == 0, "a source that starts at zero is sent as it is")
        spec.originPTS = -118_592
        spec.startPTS = -118_592
        spec.endPTS = 61_408
        spec.segmentStarts = [-118_592, -28_592]
        #expect(spec.nonNegativeShift() == 118_592)

        let shifted = spec.shifted(by: spec.nonNegativeShift())
        #expect(shifted.originPTS == 0)
        #expect(shifted.startPTS == 0)
        #expect(shifted.endPTS == 180_000)
        #expect(shifted.segmentStarts == [0, 90_000])
        #expect(shifted.segmentStarts.map { $0 - shifted.originPTS } == spec.segmentStarts.map { $0 - spec.originPTS })
        #expect(shifted.nonNegativeShift() == 0)
        var last = spec
        last.endPTS = nil
        #expect(last.shifted(by: 5).endPTS == nil, "the last chunk stays open-ended")
    }

    /// An edit list's discarded pre-roll sits before the job's first frame (at zero): the copy moves so the pre-roll
    /// keyframe is at zero, and a pre-roll at or after zero moves nothing.
    @Test func shiftingCoversThePreRoll() {
        var spec = ProtocolSamples.spec
        spec.originPTS = 0
        #expect(spec.nonNegativeShift(prerollPTS: -39_000) == 39_000)
        #expect(spec.nonNegativeShift(prerollPTS: 12_000) == 0)
        spec.originPTS = -5_000
        #expect(spec.nonNegativeShift(prerollPTS: -2_000) == 5_000, "the earlier of the two decides")
    }

    /// Messages name a task by its chunk, and by its rungs too when the chunk is cut into several tasks; a spec stored
    /// before rungs were grouped (no `chunkTaskCount`) still reads, as the only task of its chunk.
    @Test func aTaskIsNamedByItsChunkAndByItsRungsWhenItsChunkHasSeveral() throws {
        var spec = ProtocolSamples.spec
        spec.chunkIndex = 16
        spec.chunkCount = 120
        spec.renditions = [
            RenditionSpec(name: "240p", width: 426, height: 240, maxBitrate: 400_000),
            RenditionSpec(name: "360p", width: 640, height: 360, maxBitrate: 800_000),
        ]
        #expect(spec.chunkLabel == "chunk 17/120")
        spec.chunkTaskCount = 2
        #expect(spec.chunkLabel == "chunk 17/120 240p+360p")

        let encoded = try JSONEncoder().encode(spec)
        #expect(try JSONDecoder().decode(TaskSpec.self, from: encoded) == spec)
        var older = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        older["chunkTaskCount"] = nil
        let decoded = try JSONDecoder().decode(TaskSpec.self, from: try JSONSerialization.data(withJSONObject: older))
        #expect(decoded.chunkTaskCount == nil)
        #expect(decoded.chunkLabel == "chunk 17/120")
    }
}
