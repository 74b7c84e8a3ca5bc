import Foundation
import PostgresNIO

/// A PostgreSQL address as users write it: `postgres://user:password@host:port/database`, or with a unix socket
/// folder as `postgres://user@/database?host=/path/to/socket/dir`.
public struct DatabaseURL: Sendable, CustomStringConvertible {
    public var username: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// The folder holding the server's unix socket, when connecting through one.
    public var socketDirectory: String?

    public init(_ string: String) throws {
        guard let components = URLComponents(string: string),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw ConfigurationError(
                "database URL \(string.redactingPassword) is not of the form postgres://user:password@host:port/database"
            )
        }
        self.username = components.user ?? "postgres"
        self.password = components.password
        self.host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        self.port = components.port ?? 5432
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.database = path.isEmpty ? self.username : path
        self.socketDirectory = components.queryItems?.first { $0.name == "host" }?.value
    }

    public init(socketDirectory: String, port: Int = 5432, username: String = "postgres", database: String) {
        self.username = username
        self.password = nil
        self.host = "localhost"
        self.port = port
        self.database = database
        self.socketDirectory = socketDirectory
    }

    /// The same server, another database.
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }

    public var description: String { self.text(revealingPassword: false) }

    /// The URL as text; the password is masked unless `revealingPassword` (for handing to another `farm` process).
    package func text(revealingPassword: Bool) -> String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = self.username
        components.password = revealingPassword ? self.password : self.password.map { _ in "***" }
        if self.socketDirectory == nil {
            components.host = self.host
            components.port = self.port
        }
        components.path = "/" + self.database
        if let socketDirectory { components.queryItems = [URLQueryItem(name: "host", value: socketDirectory)] }
        return components.string ?? "postgres://\(self.host)/\(self.database)"
    }

    package var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(self.port)",
                username: self.username,
                password: self.password,
                database: self.database
            )
        } else {
            configuration = PostgresClient.Configuration(
                host: self.host,
                port: self.port,
                username: self.username,
                password: self.password,
                database: self.database,
                tls: .disable
            )
        }
        configuration.options.maximumConnections = 20
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}

/// A setting that cannot work, with what to change.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension String {
    fileprivate var redactingPassword: String {
        guard var components = URLComponents(string: self), components.password != nil else { return self }
        components.password = "***"
        return components.string ?? "(database URL)"
    }
}
