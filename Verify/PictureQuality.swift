import FarmFormats
import FarmMedia
import Foundation

/// One 8-bit picture plane, rows packed without padding.
package struct Plane: Sendable, Equatable {
    package var width: Int
    package var height: Int
    package var samples: [UInt8]

    package init(width: Int, height: Int, samples: [UInt8]) {
        precondition(samples.count == width * height, "a plane needs width x height samples")
        self.width = width
        self.height = height
        self.samples = samples
    }

    package init(width: Int, height: Int, value: UInt8) {
        self.init(width: width, height: height, samples: [UInt8](repeating: value, count: width * height))
    }
}

/// A yuv420p 8-bit picture: Y at full size, U and V at half size rounded up.
package struct YUVPicture: Sendable, Equatable {
    package var y: Plane
    package var u: Plane
    package var v: Plane

    package init(y: Plane, u: Plane, v: Plane) {
        self.y = y
        self.u = u
        self.v = v
    }
}

/// PSNR and SSIM over 8-bit planes. Pure functions; `farm verify` feeds them decoded pictures.
///
/// - PSNR: `10 log10(255² / MSE)`. Over a sequence, the MSE is the mean over every sample of every frame (not a mean
///   of per-frame PSNRs, which one perfect frame would make infinite). Reported for Y, and as the 6:1:1 weighted
///   `(6 Y + U + V) / 8` of the per-plane PSNRs. Identical planes give `+infinity`.
/// - SSIM: Y plane only, Wang et al. 2004 with `C1 = (0.01·255)²`, `C2 = (0.03·255)²`, computed on 8×8 square
///   windows with equal weights (a box window, not Gaussian) placed every 4 samples (overlapping by half), the
///   population variance and covariance in each window, and the mean over all windows; the sequence value is the
///   mean over frames. Samples past the last whole 4×4 block at the right and bottom edges are not windowed. This is
///   the same layout as ffmpeg's `ssim` filter, so the numbers are close to its `Y:` value.
package enum PictureQuality {
    /// Sum of squared differences of two planes of the same size.
    package static func squaredError(_ a: Plane, _ b: Plane) -> Double {
        precondition(a.width == b.width && a.height == b.height, "planes of different sizes")
        var sum: UInt64 = 0
        a.samples.withUnsafeBufferPointer { first in
            b.samples.withUnsafeBufferPointer { second in
                for index in 0..<first.count {
                    let difference = Int(first[index]) - Int(second[index])
                    sum &+= UInt64(difference * difference)
                }
            }
        }
        return Double(sum)
    }

    /// PSNR in dB for a mean squared error of 8-bit samples; `+infinity` when the error is zero.
    package static func psnr(meanSquaredError: Double) -> Double {
        guard meanSquaredError > 0 else { return .infinity }
        return 10 * log10(255.0 * 255.0 / meanSquaredError)
    }

    package static func psnr(_ a: Plane, _ b: Plane) -> Double {
        let count = a.samples.count
        guard count > 0 else { return .infinity }
        return self.psnr(meanSquaredError: self.squaredError(a, b) / Double(count))
    }

    /// Mean SSIM of two planes of the same size (see the type's documentation for the window).
    package static func ssim(_ a: Plane, _ b: Plane) -> Double {
        precondition(a.width == b.width && a.height == b.height, "planes of different sizes")
        let blocksWide = a.width / 4
        let blocksHigh = a.height / 4
        // Too small for two blocks each way: one window over the whole plane.
        guard blocksWide >= 2, blocksHigh >= 2 else {
            return self.windowSSIM(self.sums(a, b, x: 0, y: 0, width: a.width, height: a.height))
        }
        // Sums of each 4x4 block, so every 8x8 window adds four blocks instead of 64 samples.
        let blocks = self.blockSums(a, b, blocksWide: blocksWide, blocksHigh: blocksHigh)
        var total = 0.0
        for blockY in 0..<(blocksHigh - 1) {
            for blockX in 0..<(blocksWide - 1) {
                let top = blockY * blocksWide + blockX
                let bottom = top + blocksWide
                total += self.windowSSIM(blocks[top] + blocks[top + 1] + blocks[bottom] + blocks[bottom + 1])
            }
        }
        return total / Double((blocksWide - 1) * (blocksHigh - 1))
    }

    /// Sums over one window of two planes.
    package struct WindowSums: Sendable, Equatable {
        var count: Int
        var a: Int
        var b: Int
        var aa: Int
        var bb: Int
        var ab: Int

        mutating func add(_ first: Int, _ second: Int) {
            self.a += first
            self.b += second
            self.aa += first * first
            self.bb += second * second
            self.ab += first * second
        }

        static func + (left: WindowSums, right: WindowSums) -> WindowSums {
            WindowSums(
                count: left.count + right.count,
                a: left.a + right.a,
                b: left.b + right.b,
                aa: left.aa + right.aa,
                bb: left.bb + right.bb,
                ab: left.ab + right.ab
            )
        }
    }

    private static func sums(_ a: Plane, _ b: Plane, x: Int, y: Int, width: Int, height: Int) -> WindowSums {
        var result = WindowSums(count: width * height, a: 0, b: 0, aa: 0, bb: 0, ab: 0)
        a.samples.withUnsafeBufferPointer { first in
            b.samples.withUnsafeBufferPointer { second in
                for row in y..<(y + height) {
                    let base = row * a.width
                    for column in x..<(x + width) {
                        result.add(Int(first[base + column]), Int(second[base + column]))
                    }
                }
            }
        }
        return result
    }

    /// Sums of every whole 4x4 block, row by row.
    private static func blockSums(_ a: Plane, _ b: Plane, blocksWide: Int, blocksHigh: Int) -> [WindowSums] {
        var blocks = [WindowSums](
            repeating: WindowSums(count: 16, a: 0, b: 0, aa: 0, bb: 0, ab: 0),
            count: blocksWide * blocksHigh
        )
        let width = a.width
        a.samples.withUnsafeBufferPointer { first in
            b.samples.withUnsafeBufferPointer { second in
                blocks.withUnsafeMutableBufferPointer { blocks in
                    for row in 0..<(blocksHigh * 4) {
                        let base = row * width
                        let blockRow = (row / 4) * blocksWide
                        for column in 0..<(blocksWide * 4) {
                            blocks[blockRow + column / 4].add(Int(first[base + column]), Int(second[base + column]))
                        }
                    }
                }
            }
        }
        return blocks
    }

    private static func windowSSIM(_ sums: WindowSums) -> Double {
        guard sums.count > 0 else { return 1 }
        let count = Double(sums.count)
        let c1 = (0.01 * 255) * (0.01 * 255)
        let c2 = (0.03 * 255) * (0.03 * 255)
        let meanA = Double(sums.a) / count
        let meanB = Double(sums.b) / count
        let varianceA = Double(sums.aa) / count - meanA * meanA
        let varianceB = Double(sums.bb) / count - meanB * meanB
        let covariance = Double(sums.ab) / count - meanA * meanB
        return ((2 * meanA * meanB + c1) * (2 * covariance + c2))
            / ((meanA * meanA + meanB * meanB + c1) * (varianceA + varianceB + c2))
    }
}

/// Accumulates PSNR and SSIM over the frames of one rendition.
package struct QualityAccumulator: Sendable, Equatable {
    package private(set) var frames = 0
    private var squaredErrors = [0.0, 0.0, 0.0]
    private var sampleCounts = [0, 0, 0]
    private var ssimSum = 0.0

    package init() {}

    /// Adds one frame pair; `reference` is the source scaled to the rendition's size.
    package mutating func add(reference: YUVPicture, distorted: YUVPicture) {
        let pairs = [(reference.y, distorted.y), (reference.u, distorted.u), (reference.v, distorted.v)]
        for (index, (first, second)) in pairs.enumerated() {
            self.squaredErrors[index] += PictureQuality.squaredError(first, second)
            self.sampleCounts[index] += first.samples.count
        }
        self.ssimSum += PictureQuality.ssim(reference.y, distorted.y)
        self.frames += 1
    }

    private func planePSNR(_ index: Int) -> Double? {
        guard self.sampleCounts[index] > 0 else { return nil }
        return PictureQuality.psnr(meanSquaredError: self.squaredErrors[index] / Double(self.sampleCounts[index]))
    }

    /// PSNR of the Y plane over every frame, nil before the first frame.
    package var psnrY: Double? { self.planePSNR(0) }

    /// `(6 PSNR_Y + PSNR_U + PSNR_V) / 8`.
    package var psnrYUV: Double? {
        guard let y = self.planePSNR(0), let u = self.planePSNR(1), let v = self.planePSNR(2) else { return nil }
        return (6 * y + u + v) / 8
    }

    /// Mean SSIM of the Y plane over every frame.
    package var ssimY: Double? { self.frames > 0 ? self.ssimSum / Double(self.frames) : nil }
}
