using BenchmarkDotNet.Jobs;
using Covet.Data.Benchmarks.Shared;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.Benchmarks.Infrastructure;

/// <summary>
/// The suite's configuration (see <see cref="BenchmarkSuite"/>): a short job (the machine has 2 cores shared with the
/// database servers, so the whole suite must stay around ten minutes), and the check of the database connection strings.
/// </summary>
public static class BenchmarkConfig
{
    /// <summary>The default job: 1 launch, 3 warmup and 8 measured iterations (BenchmarkDotNet's own ShortRun has 3).</summary>
    public static readonly Job ShortJob = BenchmarkSuite.ShortJob(warmupCount: 3, iterationCount: 8);

    /// <summary>PostgreSQL and MariaDB, checked for the categories that need them.</summary>
    public static readonly DatabaseEnvironmentValidator Validator = new(
        Databases.VariableFor,
        Databases.MissingMessage,
        static (category, connectionString) => category == Databases.PostgreSql
            ? new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5 }.ConnectionString)
            : new MySqlConnection(new MySqlConnectionStringBuilder(connectionString) { Pooling = false, ConnectionTimeout = 5 }.ConnectionString),
        static category => $"or leave the {category} benchmarks out (e.g. `--anyCategories {Databases.Sqlite} {Databases.Cpu}`).");
}
