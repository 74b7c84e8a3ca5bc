import CFFmpeg
import FarmFormats

/// Turning pictures upright: phones store them sideways with a display matrix saying how to show them, and the
/// output must look the same in players that ignore it.
package enum Rotation {
    /// The clockwise turn (0, 90, 180 or 270 degrees) that shows a stream's pictures upright, from its display
    /// matrix. The matrix's angle is counterclockwise, as ffmpeg's own autorotation reads it.
    package static func clockwiseDegrees(of stream: MediaStream) -> Int {
        guard let matrix = av_stream_get_side_data(stream.pointer, AV_PKT_DATA_DISPLAYMATRIX, nil) else { return 0 }
        let counterclockwise = av_display_rotation_get(UnsafeRawPointer(matrix).assumingMemoryBound(to: Int32.self))
        guard counterclockwise.isFinite else { return 0 }
        let quarterTurns = Int((-counterclockwise / 90).rounded())
        return ((quarterTurns % 4) + 4) % 4 * 90
    }

    /// Width and height of a picture after turning it clockwise by `degrees`.
    package static func turned(width: Int, height: Int, clockwise degrees: Int) -> (width: Int, height: Int) {
        degrees == 90 || degrees == 270 ? (height, width) : (width, height)
    }
}

extension Frame {
    /// This 8-bit planar 4:2:0 frame turned clockwise by `degrees` (90, 180 or 270), as a new frame.
    package func rotated(clockwise degrees: Int) throws -> Frame {
        let source = self.pointer
        let (width, height) = Rotation.turned(width: self.width, height: self.height, clockwise: degrees)
        let output = Frame()
        output.width = width
        output.height = height
        output.pixelFormat = self.pixelFormat
        try check(av_frame_get_buffer(output.pointer, 0), "av_frame_get_buffer", file: "rotation")
        for plane in 0..<3 {
            let shift = plane == 0 ? 0 : 1
            let sourceWidth = (self.width + shift) >> shift
            let sourceHeight = (self.height + shift) >> shift
            guard let from = farm_frame_data(source, Int32(plane)),
                let to = farm_frame_data(output.pointer, Int32(plane))
            else { continue }
            let fromStride = Int(farm_frame_linesize(source, Int32(plane)))
            let toStride = Int(farm_frame_linesize(output.pointer, Int32(plane)))
            for y in 0..<sourceHeight {
                let row = from + y * fromStride
                for x in 0..<sourceWidth {
                    let target: Int
                    switch degrees {
                    case 90: target = x * toStride + (sourceHeight - 1 - y)
                    case 180: target = (sourceHeight - 1 - y) * toStride + (sourceWidth - 1 - x)
                    default: target = (sourceWidth - 1 - x) * toStride + y
                    }
                    to[target] = row[x]
                }
            }
        }
        output.fillRowPadding()
        output.pts = self.pts
        return output
    }
}

/// Scales decoded frames to a picture of `width` x `height` as displayed: scaled first to the size before the turn,
/// turned upright after, so the turn moves the fewest pixels. Renditions, `farm verify`'s reference pictures and
/// thumbnails all go through it, so they agree on what upright means.
package final class UprightScaler {
    private let scaler: Scaler
    private let rotation: Int

    /// - Parameter rotation: the clockwise turn that shows the source upright (0, 90, 180 or 270).
    package init(
        from frame: Frame,
        width: Int,
        height: Int,
        rotation: Int,
        format: AVPixelFormat,
        colorspace: AVColorSpace? = nil
    ) throws {
        let size = Rotation.turned(width: width, height: height, clockwise: rotation)
        self.scaler = try Scaler(
            from: frame,
            width: Int32(size.width),
            height: Int32(size.height),
            format: format,
            colorspace: colorspace
        )
        self.rotation = rotation
    }

    package func scale(_ frame: Frame) throws -> Frame {
        let scaled = try self.scaler.scale(frame)
        return self.rotation == 0 ? scaled : try scaled.rotated(clockwise: self.rotation)
    }
}
