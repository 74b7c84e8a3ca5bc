import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// The agents' registry.
extension JobStore {
    package func registerAgent(
        name: String,
        capabilities: FarmMessage.Capabilities,
        coordinator: String
    ) async throws -> Int64 {
        let rows = try await self.client.query(
            """
            INSERT INTO agents (name, capabilities, slots, state, coordinator, last_seen)
            VALUES (\(name), \(capabilities), \(capabilities.slots), \(AgentState.active), \(coordinator), now())
            ON CONFLICT (name) DO UPDATE SET capabilities = EXCLUDED.capabilities, slots = EXCLUDED.slots,
                state = EXCLUDED.state, coordinator = EXCLUDED.coordinator, last_seen = now()
            RETURNING id
            """,
            logger: self.logger
        )
        for try await id in rows.decode(Int64.self) { return id }
        throw ConfigurationError("registering agent \(name) returned no id")
    }

    package func touchAgent(id: Int64) async throws {
        _ = try await self.client.query("UPDATE agents SET last_seen = now() WHERE id = \(id)", logger: self.logger)
    }
}
