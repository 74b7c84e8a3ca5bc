import FarmProtocol
import PostgresNIO

// The values stored in jsonb columns. postgres-nio binds an `Encodable & PostgresEncodable` value as jsonb and
// decodes a `Decodable & PostgresDecodable` one from a jsonb column with its context's plain `JSONEncoder` and
// `JSONDecoder` (its `JSON+PostgresCodable.swift`): `\(settings)` in a statement is a jsonb parameter, and a row's
// `settings` column decodes as `JobSettings`.

/// `jobs.settings`.
extension JobSettings: PostgresCodable {}
/// `jobs.source_info`.
extension JobSourceInfo: PostgresCodable {}
/// `tasks.extract`.
extension SourceExtract: PostgresCodable {}
/// `tasks.spec`. FarmProtocol, which agents share, does not depend on PostgresNIO: the conformance lives here.
extension TaskSpec: PostgresCodable {}
/// `agents.capabilities`.
extension FarmMessage.Capabilities: PostgresCodable {}
