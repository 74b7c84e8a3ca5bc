/// Reads MPEG-TS packet headers (ISO/IEC 13818-1 §2.4.3). Pure, tested alone.
package enum MPEGTSPackets {
    package static let packetSize = 188

    /// The first PES of the first elementary stream in `bytes` (which start at a packet boundary), as an I-frame
    /// playlist needs it: the range from the start of `bytes` (so the PAT and PMT come along) to the end of the
    /// packets carrying that PES, and whether the muxer flagged it a random access point (a keyframe).
    package struct LeadingPES: Equatable {
        package var end: Int
        package var isRandomAccess: Bool

        package init(end: Int, isRandomAccess: Bool) {
            self.end = end
            self.isRandomAccess = isRandomAccess
        }
    }

    package static func leadingPES(_ bytes: [UInt8]) throws -> LeadingPES {
        var pid: Int?
        var isRandomAccess = false
        var offset = 0
        while offset + self.packetSize <= bytes.count {
            guard bytes[offset] == 0x47 else {
                throw MediaError(.invalidInput, "MPEG-TS sync byte missing at byte \(offset); the file is damaged")
            }
            let packetPID = Int(bytes[offset + 1] & 0x1F) << 8 | Int(bytes[offset + 2])
            let unitStart = bytes[offset + 1] & 0x40 != 0
            let hasAdaptation = bytes[offset + 3] & 0x20 != 0
            let payloadStart = offset + 4 + (hasAdaptation ? 1 + Int(bytes[offset + 4]) : 0)
            if let pid {
                // The next PES of the same stream ends this one.
                if packetPID == pid, unitStart { return LeadingPES(end: offset, isRandomAccess: isRandomAccess) }
            } else if unitStart, payloadStart + 3 <= offset + self.packetSize,
                bytes[payloadStart] == 0, bytes[payloadStart + 1] == 0, bytes[payloadStart + 2] == 1
            {
                // A PES start code: tables (PAT, PMT, SDT) never carry one.
                pid = packetPID
                isRandomAccess = hasAdaptation && bytes[offset + 4] > 0 && bytes[offset + 5] & 0x40 != 0
            }
            offset += self.packetSize
        }
        guard pid != nil else { throw MediaError(.invalidInput, "the MPEG-TS bytes hold no PES packet") }
        return LeadingPES(end: offset, isRandomAccess: isRandomAccess)
    }
}
