/// Percentile by nearest rank; 0 for no samples.
func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// The wall time a coordinator with no overhead at all would take: tasks handed out in lease order, each to the
/// slot that frees first. Above `total / slots` when the tasks do not divide evenly among the slots (the last
/// round), so the scaling efficiency is also given against this bound.
func listSchedulingMakespan(_ durations: [Double], slots: Int) -> Double {
    guard slots > 0 else { return 0 }
    var free = [Double](repeating: 0, count: slots)
    for duration in durations {
        let (index, start) = free.enumerated().min { $0.element < $1.element }!
        free[index] = start + duration
    }
    return free.max() ?? 0
}
