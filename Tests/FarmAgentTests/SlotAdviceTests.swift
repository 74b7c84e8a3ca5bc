import Testing

@testable import FarmAgent

@Suite("Slot advice")
struct SlotAdviceTests {
    static let gib: UInt64 = 1 << 30

    @Test func oneSlotPerCoreWhenMemoryIsPlenty() {
        let advice = SlotAdvice(cores: 16, memoryBytes: 64 * Self.gib)
        #expect(advice.slots == 16)
        #expect(!advice.limitedByMemory)
        #expect(advice.reason.contains("one per core (16)"))
    }

    /// A 16-core machine with 8 GiB must not run 16 2160p tasks at once: memory sets the number, and says so.
    @Test func memoryCapsTheSlotsSoA2160pJobCannotExhaustIt() {
        let advice = SlotAdvice(cores: 16, memoryBytes: 8 * Self.gib)
        let fitting = Int((8 * Self.gib - SlotAdvice.baseBytes) / SlotAdvice.peakBytesPerSlot)
        #expect(advice.slots == fitting)
        #expect(advice.slots < 16)
        #expect(UInt64(advice.slots) * SlotAdvice.peakBytesPerSlot + SlotAdvice.baseBytes <= 8 * Self.gib)
        #expect(advice.limitedByMemory)
        #expect(advice.reason.contains("16 cores, but 8.0 GiB of memory holds \(fitting) 2160p tasks"))
    }

    @Test func neverFewerThanOneSlot() {
        #expect(SlotAdvice(cores: 0, memoryBytes: 0).slots == 1)
        #expect(SlotAdvice(cores: 4, memoryBytes: 256 << 20).slots == 1)
    }

    @Test func thisMachineGetsAtLeastOneSlotAndAtMostItsCores() {
        let advice = SlotAdvice.forThisMachine()
        #expect(advice.slots >= 1 && advice.slots <= advice.cores)
        #expect(advice.memoryBytes > 0)
    }
}
