import Foundation

/// The folders on the coordinator's disk that API clients may name sources in (`--source-folder`). A path is
/// allowed when the file it names, after every symbolic link and `..` is resolved by the kernel (`realpath`), lies
/// inside one of them, compared component by component: no spelling of a path reaches outside them.
package struct SourceFolders: Sendable {
    package let roots: [[String]]

    /// - Throws: when a folder does not exist (an operator's typo would otherwise refuse every path quietly).
    package init(_ folders: [String]) throws {
        self.roots = try folders.map { folder in
            guard let resolved = Self.resolve(folder) else {
                throw SourceFolderError("source folder \(folder) does not exist; create it or fix --source-folder")
            }
            return resolved
        }
    }

    /// The resolved path of a source the client named, or why it is refused (said so the client can fix it).
    package func source(_ path: String) -> Result<String, SourceFolderError> {
        guard !self.roots.isEmpty else {
            return .failure(
                SourceFolderError(
                    "this coordinator takes no paths on its disk; upload the video or give its URL (an operator "
                        + "allows paths with `farm coordinator --source-folder DIR`)"
                )
            )
        }
        guard path.hasPrefix("/") else {
            return .failure(SourceFolderError("the path \(path) is not absolute; give it from /"))
        }
        guard let resolved = Self.resolve(path) else {
            return .failure(SourceFolderError("no file \(path) on the coordinator; check the path"))
        }
        guard self.roots.contains(where: { $0.count < resolved.count && Array(resolved.prefix($0.count)) == $0 })
        else {
            return .failure(
                SourceFolderError("the path \(path) is outside the folders this coordinator takes sources from")
            )
        }
        return .success("/" + resolved.joined(separator: "/"))
    }

    /// The path's components after the kernel resolved it; nil when nothing is there.
    static func resolve(_ path: String) -> [String]? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved).split(separator: "/").map(String.init)
    }
}

package struct SourceFolderError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
