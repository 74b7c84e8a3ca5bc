import FarmCoordinator
import Logging
import PostgresNIO
import ServiceLifecycle

/// The HTTP API's wake-ups, one per kind of news on `JobStore.apiChannel`.
package struct APISignals: Sendable {
    /// A job's source waits to be fetched.
    package let fetches = WorkSignal()
    /// A webhook delivery is due.
    package let webhooks = WorkSignal()
    /// A job has a new event (every event stream then looks for its own job's).
    package let events = WorkSignal()

    package init() {}

    func notify(_ payload: String) {
        switch payload {
        case "fetch": self.fetches.notifyAll()
        case "webhooks": self.webhooks.notifyAll()
        default: if payload.hasPrefix("events:") { self.events.notifyAll() }
        }
    }

    /// Everything, as after a lost LISTEN connection: whatever came meanwhile is looked for again.
    func notifyAll() {
        self.fetches.notifyAll()
        self.webhooks.notifyAll()
        self.events.notifyAll()
    }
}

/// Holds one connection in LISTEN on the API's channel and turns each notification into its signal, so streams,
/// fetches and deliveries wait on NOTIFY rather than poll.
package struct APINotificationListener: Service {
    var client: PostgresClient
    var signals: APISignals
    var logger: Logger

    package init(client: PostgresClient, signals: APISignals, logger: Logger) {
        self.client = client
        self.signals = signals
        self.logger = logger
    }

    package func run() async {
        // Nothing to finish: a shutdown ends the LISTEN at once.
        await cancelWhenGracefulShutdown { await self.listen() }
    }

    private func listen() async {
        while !Task.isCancelled {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: JobStore.apiChannel) { notifications in
                        // Listening from here on: news from before is looked for once.
                        self.signals.notifyAll()
                        for try await notification in notifications { self.signals.notify(notification.payload) }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("LISTEN connection of the API lost; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
