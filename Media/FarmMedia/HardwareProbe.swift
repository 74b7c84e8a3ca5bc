import CFFmpeg
import FarmFormats
import Foundation

/// Finds what an agent can encode with.
public enum HardwareProbe {
    public struct Result: Sendable {
        /// Encoders present in this libav build that farm can use.
        public var encoders: [String]
        /// A VA-API render node that libav could open, or nil.
        public var vaapiDevice: String?
        /// Why no VA-API device is used, for the log.
        public var vaapiUnavailableReason: String?
    }

    public static func probe() -> Result {
        MediaLogging.quiet()
        let candidates: [String] = ["libx264", "h264_vaapi", "aac"]
        let encoders = candidates.filter { name in avcodec_find_encoder_by_name(name) != nil }
        guard encoders.contains("h264_vaapi") else {
            return Result(
                encoders: encoders,
                vaapiDevice: nil,
                vaapiUnavailableReason: "libav was built without h264_vaapi"
            )
        }
        let nodes = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/dri")) ?? [])
            .filter { $0.hasPrefix("renderD") }.sorted().map { "/dev/dri/\($0)" }
        guard !nodes.isEmpty else {
            return Result(encoders: encoders, vaapiDevice: nil, vaapiUnavailableReason: "no render node under /dev/dri")
        }
        var lastError = ""
        for node in nodes {
            var device: UnsafeMutablePointer<AVBufferRef>?
            let result = av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_VAAPI, node, nil, 0)
            if result >= 0 {
                av_buffer_unref(&device)
                return Result(encoders: encoders, vaapiDevice: node, vaapiUnavailableReason: nil)
            }
            lastError = "\(node): \(avErrorString(result))"
        }
        return Result(
            encoders: encoders,
            vaapiDevice: nil,
            vaapiUnavailableReason: "VA-API could not open \(lastError)"
        )
    }
}
