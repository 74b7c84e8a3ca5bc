import FarmCoordinator
import Foundation
import Testing

@Suite("Job settings")
struct JobSettingsTests {
    /// `jobs.settings` rows written before `--container` existed must still plan and stitch, as fMP4.
    @Test func settingsStoredWithoutAContainerAreFMP4() throws {
        var stored = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(JobSettings())) as? [String: Any]
        )
        stored.removeValue(forKey: "container")
        let decoded = try JSONDecoder().decode(JobSettings.self, from: JSONSerialization.data(withJSONObject: stored))
        #expect(decoded.container == .fmp4)

        let ts = try JSONDecoder().decode(JobSettings.self, from: JSONEncoder().encode(JobSettings(container: .ts)))
        #expect(ts.container == .ts)
    }
}
