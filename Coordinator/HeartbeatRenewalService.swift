import ServiceLifecycle

/// Sends the heartbeats sessions queue in `HeartbeatBatcher` as one renewal statement per round.
struct HeartbeatRenewalService: Service {
    var batcher: HeartbeatBatcher
    var store: JobStore
    var leaseSeconds: Double

    func run() async {
        await self.batcher.run { batch in try await self.store.heartbeat(batch, leaseSeconds: self.leaseSeconds) }
    }
}
