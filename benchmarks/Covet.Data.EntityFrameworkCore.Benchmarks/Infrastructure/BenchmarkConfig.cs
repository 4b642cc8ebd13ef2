using BenchmarkDotNet.Jobs;
using Covet.Data.Benchmarks.Shared;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

/// <summary>
/// The suite's configuration (see <see cref="BenchmarkSuite"/>): a short job with a long warm-up, and the check of the
/// PostgreSQL connection string.
/// </summary>
public static class BenchmarkConfig
{
    /// <summary>
    /// The default job: 1 launch, 15 warmup and 10 measured iterations. EF Core needs the long warm-up: with 3 warmup
    /// iterations every case was still getting faster by ~5 % per iteration through all 8 measured ones (tiered JIT
    /// promoting EF's many methods), which made the means meaningless (a run measured 786 → 473 µs within one case).
    /// </summary>
    public static readonly Job ShortJob = BenchmarkSuite.ShortJob(warmupCount: 15, iterationCount: 10);

    /// <summary>Every EF Core benchmark needs PostgreSQL.</summary>
    public static readonly DatabaseEnvironmentValidator Validator = new(
        Databases.VariableFor,
        Databases.MissingMessage,
        static (_, connectionString) =>
            new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5 }.ConnectionString),
        static _ => "then retry.");
}
