import FarmCoordinator
import Testing

@Suite("Database URLs")
struct DatabaseURLTests {
    @Test func logsMaskThePasswordAndChildProcessesGetIt() throws {
        let url = try DatabaseURL("postgres://farm:s3cret@db.internal:6543/jobs")
        #expect(url.description == "postgres://farm:***@db.internal:6543/jobs")
        #expect(url.text(revealingPassword: true) == "postgres://farm:s3cret@db.internal:6543/jobs")
        #expect(
            url.with(database: "other").text(revealingPassword: true) == "postgres://farm:s3cret@db.internal:6543/other"
        )
        let socket = try DatabaseURL("postgres://farm@/jobs?host=/var/run/postgresql")
        #expect(try DatabaseURL(socket.text(revealingPassword: true)).socketDirectory == "/var/run/postgresql")
    }
}
