import Crypto
import Foundation
import Hummingbird
import NIOCore
import NIOPosix

/// The file of a tus upload (or of a source fetched from a URL) on the coordinator's disk. A piece is written at the upload's stored offset (whatever
/// an earlier piece left past it, never counted, is cut off first) and fsynced before it counts; POSIX calls on the
/// thread pool, off the event loop.
enum UploadFile {
    struct Appended {
        /// Bytes of the piece now in the file (and fsynced).
        var written: Int64
        /// SHA-1 of those bytes, for `Upload-Checksum`.
        var sha1: Data
        /// Why the body ended early (the client went away); its bytes up to there are kept.
        var interruption: (any Error)?
        /// The body held more bytes than the upload has left; those were not written.
        var overflowed: Bool
    }

    static func create(at path: String) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw UploadFileError(operation: "create", path: path, code: errno) }
            close(descriptor)
        }
    }

    static func remove(at path: String) async {
        _ = try? await NIOThreadPool.singleton.runIfActive { unlink(path) }
    }

    /// Cuts the file back to `offset`: a piece that cannot count (its checksum failed) leaves nothing.
    static func cut(_ path: String, to offset: Int64) async throws {
        try await NIOThreadPool.singleton.runIfActive {
            guard truncate(path, off_t(offset)) == 0 else {
                throw UploadFileError(operation: "truncate", path: path, code: errno)
            }
        }
    }

    /// Writes `body` at `offset`, at most `room` bytes, in pieces of up to 1 MiB, then fsyncs.
    static func append<Body: AsyncSequence>(
        _ body: Body,
        to path: String,
        at offset: Int64,
        room: Int64
    ) async throws -> Appended where Body.Element == ByteBuffer {
        let descriptor = try await NIOThreadPool.singleton.runIfActive { () throws -> Int32 in
            let descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw UploadFileError(operation: "open", path: path, code: errno) }
            guard ftruncate(descriptor, off_t(offset)) == 0, lseek(descriptor, off_t(offset), SEEK_SET) == offset else {
                let code = errno
                close(descriptor)
                throw UploadFileError(operation: "seek in", path: path, code: code)
            }
            return descriptor
        }
        defer { close(descriptor) }
        var sha1 = Insecure.SHA1()
        var written: Int64 = 0
        var pending = ByteBuffer()
        var interruption: (any Error)?
        var overflowed = false
        func flush() async throws {
            guard pending.readableBytes > 0 else { return }
            let bytes = Data(buffer: pending)
            try await NIOThreadPool.singleton.runIfActive { try Self.writeAll(bytes, to: descriptor, path: path) }
            pending.clear()
        }
        do {
            for try await piece in body {
                var piece = piece
                let left = room - written
                if Int64(piece.readableBytes) > left {
                    overflowed = true
                    piece = piece.getSlice(at: piece.readerIndex, length: Int(left)) ?? ByteBuffer()
                }
                piece.withUnsafeReadableBytes { sha1.update(bufferPointer: $0) }
                written += Int64(piece.readableBytes)
                pending.writeImmutableBuffer(piece)
                if pending.readableBytes >= 1 << 20 { try await flush() }
                if overflowed { break }
            }
        } catch let error as UploadFileError {
            throw error
        } catch {
            interruption = error
        }
        // The rest, and the fsync, in a task of its own: a client gone midway may have cancelled the request's task
        // (the thread pool refuses work for a cancelled one), and what it sent must still be kept.
        let rest = Data(buffer: pending)
        try await Task {
            try await NIOThreadPool.singleton.runIfActive {
                try Self.writeAll(rest, to: descriptor, path: path)
                guard fsync(descriptor) == 0 else { throw UploadFileError(operation: "fsync", path: path, code: errno) }
            }
        }.value
        return Appended(
            written: written,
            sha1: Data(sha1.finalize()),
            interruption: interruption,
            overflowed: overflowed
        )
    }

    private static func writeAll(_ bytes: Data, to descriptor: Int32, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let count = write(descriptor, raw.baseAddress! + done, raw.count - done)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw UploadFileError(operation: "write", path: path, code: errno)
                }
                done += count
            }
        }
    }
}

/// The coordinator's disk refused an upload's bytes (full, or the folder gone).
struct UploadFileError: Error, CustomStringConvertible {
    var operation: String
    var path: String
    var code: Int32
    var description: String {
        "could not \(self.operation) \(self.path): \(String(cString: strerror(self.code))); check the upload folder's "
            + "disk (--upload-folder)"
    }
}
