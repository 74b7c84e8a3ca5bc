import FarmAPI
import FarmTestSupport
import Foundation
import Testing

/// Real files and links: a path reaches a source only when the file it names lies inside an allowed folder.
@Suite("Source folders")
struct SourceFoldersTests {
    @Test func onlyFilesInsideTheAllowedFoldersAreSources() throws {
        let directory = try TemporaryDirectory("farm-sources")
        defer { directory.remove() }
        let allowed = directory.file("allowed")
        let other = directory.file("other")
        for folder in [allowed, other, allowed + "/deep"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for file in [allowed + "/a.mp4", allowed + "/deep/b.mp4", other + "/secret.mp4"] {
            try Data("video".utf8).write(to: URL(fileURLWithPath: file))
        }
        try FileManager.default.createSymbolicLink(
            atPath: allowed + "/escape.mp4",
            withDestinationPath: other + "/secret.mp4"
        )
        try FileManager.default.createSymbolicLink(atPath: directory.file("allowed-twin"), withDestinationPath: allowed)
        // A folder whose name starts like the allowed one is not inside it.
        try FileManager.default.createDirectory(atPath: allowed + "-x", withIntermediateDirectories: true)
        try Data("video".utf8).write(to: URL(fileURLWithPath: allowed + "-x/c.mp4"))

        let folders = try SourceFolders([allowed])
        let resolvedAllowed = try #require(try? folders.source(allowed + "/a.mp4").get())
        #expect(resolvedAllowed.hasSuffix("/allowed/a.mp4"))
        #expect((try? folders.source(allowed + "/deep/b.mp4").get()) != nil)
        #expect((try? folders.source(directory.file("allowed-twin") + "/a.mp4").get()) == resolvedAllowed)
        for refused in [
            other + "/secret.mp4", allowed + "/escape.mp4", allowed + "/../other/secret.mp4", allowed + "-x/c.mp4",
            allowed, allowed + "/missing.mp4", "allowed/a.mp4", "/etc/passwd",
        ] {
            #expect(throws: SourceFolderError.self, "\(refused) was taken") { try folders.source(refused).get() }
        }
        let none = try SourceFolders([])
        let refusal = try #require(throws: SourceFolderError.self) { try none.source(allowed + "/a.mp4").get() }
        #expect(refusal.description.contains("--source-folder"))
        #expect(throws: SourceFolderError.self) { try SourceFolders([directory.file("no-such-folder")]) }
    }
}
