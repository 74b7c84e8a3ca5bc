/// Tells IDR access units from other keyframes in MP4 (length-prefixed) H.264 and HEVC packets. Pure.
///
/// A container's sync-sample flag is not enough: a non-IDR I frame (x264's open-GOP keyframe, or a forced keyframe
/// without `forced-idr`) is flagged as a keyframe too, but a player that starts decoding there may show garbage.
package enum NALUnits {
    package enum Codec: Sendable, Equatable {
        case h264
        case hevc
    }

    /// The NAL length size (1, 2 or 4 bytes) from an `avcC` or `hvcC` configuration record, nil when the record is
    /// not one (Annex B extradata, or too short).
    package static func lengthSize(configuration: [UInt8], codec: Codec) -> Int? {
        guard configuration.first == 1 else { return nil }
        switch codec {
        case .h264:
            guard configuration.count >= 5 else { return nil }
            return Int(configuration[4] & 0x03) + 1
        case .hevc:
            guard configuration.count >= 23 else { return nil }
            return Int(configuration[21] & 0x03) + 1
        }
    }

    /// The NAL unit types in one length-prefixed access unit; nil when a length runs past the end.
    package static func types(in packet: [UInt8], lengthSize: Int, codec: Codec) -> [Int]? {
        var types: [Int] = []
        var offset = 0
        while offset < packet.count {
            guard offset + lengthSize <= packet.count else { return nil }
            var length = 0
            for byte in packet[offset..<(offset + lengthSize)] { length = length << 8 | Int(byte) }
            offset += lengthSize
            guard length > 0, offset + length <= packet.count else { return nil }
            let header = packet[offset]
            switch codec {
            case .h264: types.append(Int(header & 0x1F))
            case .hevc: types.append(Int((header >> 1) & 0x3F))
            }
            offset += length
        }
        return types
    }

    /// True when the access unit holds an IDR picture (H.264 type 5; HEVC IDR_W_RADL 19 or IDR_N_LP 20).
    package static func isIDR(_ packet: [UInt8], lengthSize: Int, codec: Codec) -> Bool? {
        guard let types = self.types(in: packet, lengthSize: lengthSize, codec: codec) else { return nil }
        switch codec {
        case .h264: return types.contains(5)
        case .hevc: return types.contains { $0 == 19 || $0 == 20 }
        }
    }
}
