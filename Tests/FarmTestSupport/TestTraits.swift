import Testing

extension Trait where Self == ConditionTrait {
    /// Runs a suite only where a PostgreSQL server is configured (`make test` starts one), and always in CI, where a
    /// missing server must fail rather than skip.
    package static var requiresPostgreSQL: Self {
        .enabled(if: TestDatabase.isAvailable, Comment(rawValue: TestDatabase.skipMessage))
    }
}

extension Trait where Self == TimeLimitTrait {
    /// The longest a test that runs a whole farm may take; past it the test fails by name instead of stalling the run.
    package static var farmTimeLimit: Self { .timeLimit(.minutes(5)) }
}
