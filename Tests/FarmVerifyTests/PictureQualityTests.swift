import FarmMedia
import FarmVerify
import Foundation
import Testing

@Suite("PSNR and SSIM")
struct PictureQualityTests {
    /// A deterministic textured plane (a gradient with a pattern), so SSIM's variances are not zero.
    static func texture(width: Int, height: Int) -> Plane {
        var samples: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width { samples.append(UInt8((x * 7 + y * 13 + (x * y) % 31) % 200 + 20)) }
        }
        return Plane(width: width, height: height, samples: samples)
    }

    /// The plane plus `+amplitude` and `-amplitude` on alternate samples (a checkerboard).
    static func withNoise(_ plane: Plane, amplitude: Int) -> Plane {
        var samples = plane.samples
        for y in 0..<plane.height {
            for x in 0..<plane.width {
                let index = y * plane.width + x
                samples[index] = UInt8(Int(samples[index]) + ((x + y) % 2 == 0 ? amplitude : -amplitude))
            }
        }
        return Plane(width: plane.width, height: plane.height, samples: samples)
    }

    @Test func identicalPlanesArePerfect() {
        let plane = Self.texture(width: 64, height: 48)
        #expect(PictureQuality.psnr(plane, plane) == .infinity)
        #expect(PictureQuality.ssim(plane, plane) == 1.0)
        let flat = Plane(width: 16, height: 16, value: 128)
        #expect(PictureQuality.ssim(flat, flat) == 1.0)
    }

    @Test func knownNoiseGivesKnownPSNR() {
        let plane = Self.texture(width: 64, height: 48)
        // Every sample off by 4: MSE 16, PSNR = 10 log10(255² / 16) = 36.0896 dB.
        let noisy = Self.withNoise(plane, amplitude: 4)
        #expect(abs(PictureQuality.squaredError(plane, noisy) - 16.0 * 64 * 48) < 1e-9)
        #expect(abs(PictureQuality.psnr(plane, noisy) - 36.0896) < 0.0001)
        // Off by 1: PSNR = 20 log10(255) = 48.1308 dB.
        #expect(abs(PictureQuality.psnr(plane, Self.withNoise(plane, amplitude: 1)) - 48.1308) < 0.0001)
        #expect(abs(PictureQuality.psnr(meanSquaredError: 255 * 255) - 0) < 1e-12)
    }

    @Test func ssimFallsWithNoiseAndStaysInRange() {
        let plane = Self.texture(width: 64, height: 48)
        let light = PictureQuality.ssim(plane, Self.withNoise(plane, amplitude: 2))
        let heavy = PictureQuality.ssim(plane, Self.withNoise(plane, amplitude: 12))
        #expect(light < 1 && light > 0.9)
        #expect(heavy < light)
        #expect(heavy > 0)
        // Structure destroyed: a flat plane against a texture of the same mean scores far lower.
        let mean = UInt8(plane.samples.reduce(0) { $0 + Int($1) } / plane.samples.count)
        #expect(PictureQuality.ssim(plane, Plane(width: 64, height: 48, value: mean)) < 0.2)
    }

    @Test func ssimOfAConstantShiftFollowsTheLuminanceTerm() {
        // Two flat 8x8 planes, 100 and 110: variances 0, so SSIM = (2·100·110 + C1) / (100² + 110² + C1).
        let c1 = (0.01 * 255) * (0.01 * 255)
        let expected = (2 * 100 * 110 + c1) / (100 * 100 + 110 * 110 + c1)
        let ssim = PictureQuality.ssim(Plane(width: 8, height: 8, value: 100), Plane(width: 8, height: 8, value: 110))
        #expect(abs(ssim - expected) < 1e-12)
    }

    @Test func accumulatorCombinesFramesAndPlanes() {
        let y = Self.texture(width: 32, height: 32)
        let chroma = Self.texture(width: 16, height: 16)
        let reference = YUVPicture(y: y, u: chroma, v: chroma)
        var accumulator = QualityAccumulator()
        #expect(accumulator.psnrY == nil && accumulator.ssimY == nil)
        accumulator.add(reference: reference, distorted: reference)
        #expect(accumulator.psnrY == .infinity)
        #expect(accumulator.ssimY == 1)
        // A second frame with Y off by 4 and chroma exact: the sequence MSE of Y is 8 (half the samples off by 16).
        accumulator.add(
            reference: reference,
            distorted: YUVPicture(y: Self.withNoise(y, amplitude: 4), u: chroma, v: chroma)
        )
        #expect(accumulator.frames == 2)
        let psnrY = 10 * log10(255.0 * 255.0 / 8)
        #expect(abs((accumulator.psnrY ?? 0) - psnrY) < 1e-9)
        #expect(accumulator.psnrYUV == .infinity, "exact chroma planes keep the weighted PSNR infinite")
        #expect((accumulator.ssimY ?? 1) < 1)
    }
}
